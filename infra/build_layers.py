"""Build the layer folders for the Lambda platform (no Docker): `make layers`.

    python infra/build_layers.py [--output build/layers/deps] [--engine-output build/layers/engine]
                                 [--python /path/to/python3.12]

The engine layer (our package) is copied from `layers/engine/python/engine` without the dev-only
local runtime and compiled like the dependencies (step 2): Lambda cannot write `.pyc`, so without
shipped bytecode every cold start would compile the whole package again.

The dependency layer:

1. `pip install --platform manylinux2014_aarch64 --only-binary=:all: --python-version 3.12
   --implementation cp --target <output>/python -r layers/deps/requirements.txt -c requirements.lock`
   (wheels for arm64 Lambda whatever the build machine is; the lock pins the transitive versions).
2. `python3.12 -m compileall --invalidation-mode unchecked-hash <output>/python`: bytecode for the
   runtime's interpreter (Lambda cannot write `.pyc`), valid although asset zips reset file times.
3. Removes what the functions never import (tests, type stubs' caches) and prints the unzipped size.

The interpreter for step 2 must be the runtime's version (settings.LAMBDA_PYTHON_VERSION): from
`--python`, else `$LAMBDA_PYTHON`, else `python3.12` on PATH, else pyenv's `~/.pyenv/versions/3.12.*`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from infra.settings import (  # noqa: E402
    DEFAULT_DEPS_LAYER_PATH,
    DEFAULT_ENGINE_LAYER_PATH,
    LAMBDA_PYTHON_VERSION,
)

PLATFORM = "manylinux2014_aarch64"
# The engine package; its `local` runtime (dev-only) and the developer's bytecode are not shipped.
ENGINE_SOURCE = PROJECT_ROOT / "layers" / "engine" / "python"
REQUIREMENTS = PROJECT_ROOT / "layers" / "deps" / "requirements.txt"
CONSTRAINTS = PROJECT_ROOT / "requirements.lock"
# Folders inside the layer that no function imports (relative to python/): the engine uses ccxt's
# synchronous API only (engine.exchange), and `import ccxt` does not import these async/websocket
# packages (checked by importing the pruned layer: see --smoke-test). Saves ~35 MB of the 250 MB.
PRUNE = ("ccxt/async_support", "ccxt/pro", "ccxt/prediction", "ccxt/test")
# What the functions import from the layer; --smoke-test imports each with the runtime's Python.
SMOKE_IMPORTS = (
    "aws_lambda_powertools",
    "aws_lambda_powertools.utilities.idempotency",
    "aws_lambda_powertools.utilities.parameters",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.metrics",
    "boto3",
    "pydantic",
    "pynamodb.models",
    "ccxt",
)


def pip_command(
    target: Path,
    *,
    requirements: Path = REQUIREMENTS,
    constraints: Path | None = CONSTRAINTS,
    python_version: str = LAMBDA_PYTHON_VERSION,
    platform: str = PLATFORM,
) -> list[str]:
    """The pip invocation that fills `target` with the Lambda platform's wheels."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--quiet",
        "--no-compile",
        "--platform",
        platform,
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "--target",
        str(target),
        "-r",
        str(requirements),
    ]
    if constraints is not None and constraints.exists():
        command += ["-c", str(constraints)]
    return command


def compile_command(interpreter: str, target: Path) -> list[str]:
    return [
        interpreter,
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        str(target),
    ]


def find_interpreter(version: str = LAMBDA_PYTHON_VERSION, explicit: str | None = None) -> str:
    """A CPython `version` interpreter for compiling the layer's bytecode (see module docstring)."""
    candidates: list[str] = []
    if explicit:
        candidates.append(explicit)
    if os.environ.get("LAMBDA_PYTHON"):
        candidates.append(os.environ["LAMBDA_PYTHON"])
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [str(path) for path in sorted(pyenv.glob(f"{version}.*/bin/python{version}"), reverse=True)]
    for candidate in candidates:
        if _interpreter_version(candidate) == version:
            return candidate
    raise SystemExit(
        f"no Python {version} interpreter found (tried {candidates or 'nothing'}); "
        f"install one or pass --python / set LAMBDA_PYTHON"
    )


def _interpreter_version(interpreter: str) -> str | None:
    try:
        result = subprocess.run(
            [interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip()


def directory_size(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())


def prune(target: Path, relative_paths: Sequence[str] = PRUNE) -> None:
    for relative in relative_paths:
        shutil.rmtree(target / relative, ignore_errors=True)


def smoke_test(interpreter: str, target: Path) -> None:
    """Import the layer's entry points in isolation (-I: no user site, no cwd; only `target` added)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import ccxt; ccxt.binance(); ccxt.bybit(); ccxt.okx()\n"
    )
    code += "".join(f"import {module}\n" for module in SMOKE_IMPORTS)
    subprocess.run([interpreter, "-I", "-c", code, str(target)], check=True)


def build(output: Path, interpreter: str, *, platform: str = PLATFORM) -> int:
    """Rebuild `output/python` from scratch; returns its size in bytes."""
    target = output / "python"
    if output.exists():
        shutil.rmtree(output)
    target.mkdir(parents=True)
    subprocess.run(pip_command(target, platform=platform), check=True)
    prune(target)
    subprocess.run(compile_command(interpreter, target), check=True)
    return directory_size(output)


def build_engine(output: Path, interpreter: str, source: Path = ENGINE_SOURCE) -> int:
    """Rebuild `output/python/engine` from the source package, compiled; returns its size in bytes."""
    target = output / "python"
    if output.exists():
        shutil.rmtree(output)
    target.mkdir(parents=True)
    shutil.copytree(source / "engine", target / "engine", ignore=_ignore_top_level_local(source / "engine"))
    subprocess.run(compile_command(interpreter, target), check=True)
    return directory_size(output)


def _ignore_top_level_local(root: Path) -> Callable[[str, list[str]], set[str]]:
    """copytree's ignore: `engine/local` (only at the top) and any bytecode."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {name for name in names if name == "__pycache__" or name.endswith(".pyc")}
        if Path(directory) == root and "local" in names:
            skipped.add("local")
        return skipped

    return ignore


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / DEFAULT_DEPS_LAYER_PATH)
    parser.add_argument("--engine-output", type=Path, default=PROJECT_ROOT / DEFAULT_ENGINE_LAYER_PATH)
    parser.add_argument("--engine-only", action="store_true", help="rebuild only the engine layer (~1 s)")
    parser.add_argument("--python", help=f"Python {LAMBDA_PYTHON_VERSION} interpreter for compileall")
    parser.add_argument(
        "--platform",
        default=PLATFORM,
        help="wheel platform (default: Lambda arm64; the host's, e.g. manylinux2014_x86_64, "
        "only to smoke-test the pruned set on this machine)",
    )
    parser.add_argument(
        "--smoke-test",
        action="store_true",
        help="import the layer's packages afterwards (needs --platform of this machine)",
    )
    args = parser.parse_args(argv)
    interpreter = find_interpreter(explicit=args.python)
    engine_size = build_engine(args.engine_output.resolve(), interpreter)
    print(f"engine layer: {args.engine_output} ({engine_size / 1_000_000:.1f} MB unzipped)")
    if args.engine_only:
        return 0
    size = build(args.output.resolve(), interpreter, platform=args.platform)
    if args.smoke_test:
        smoke_test(interpreter, args.output.resolve() / "python")
        print("smoke test: every layer import succeeded")
    print(f"dependency layer: {args.output} ({size / 1_000_000:.1f} MB unzipped, limit 250 MB with code)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
