"""One botocore data loader per process, shared by every botocore/boto3 session (cold start).

A function builds several sessions on its first request: pynamodb's, and one per Powertools utility
(the SSM and Secrets Manager providers, the idempotency layer each create a ``boto3.session.Session``).
Each session gets its own data loader, and each loader parses the same JSON again — ``endpoints.json``,
``partitions.json``, the retry and defaults files, the DynamoDB model twice: about half of a cold first
request's CPU time. The files never change in a process, so :func:`share_data_loader` makes every
session created after it use one loader (per data path) and its caches.

The loader is only read after it is built (botocore treats loaded data as read-only across the clients
of a session already); boto3 appends its own data folder to a session's loader, which the shared
loader records once.
"""

from __future__ import annotations

import threading
from typing import Any

import botocore.session
from botocore.loaders import Loader, create_loader

__all__ = ["share_data_loader"]

_lock = threading.Lock()
_loaders: dict[str | None, Loader] = {}


class _UniquePaths(list[str]):
    """A search-path list that ignores a folder it already holds (boto3 appends one per session)."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


def _shared_loader(search_path_string: str | None = None) -> Loader:
    with _lock:
        loader = _loaders.get(search_path_string)
        if loader is None:
            loader = create_loader(search_path_string)
            paths: Any = _UniquePaths(loader.search_paths)
            loader._search_paths = paths  # botocore keeps the list here; search_paths returns it
            _loaders[search_path_string] = loader
        return loader


def share_data_loader() -> None:
    """Make every botocore session created from now on use the process's shared data loader."""
    botocore.session.create_loader = _shared_loader  # type: ignore[attr-defined]
