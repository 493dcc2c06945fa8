"""The local runtime: moto, the handlers behind HTTP, the stream pump, the scheduler and the view.

Start order: bind the HTTP port and hold the state directory (fail fast when either is taken), start
moto, point the process at it, restore the saved state (``engine.local.aws.persistence``), start journalling,
create missing tables and seed config and the webhook secret (what was restored is kept), then start the
pump, the scheduler and the server. :meth:`LocalRuntime.stop` undoes it all in reverse; every thread is
joined, and the state saved, before moto goes away.
"""

from __future__ import annotations

import errno
import gc
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TextIO

import boto3
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

from engine.local import bootstrap
from engine.local.activity import ActivityLog, released_groups
from engine.local.alert_example import alert_message
from engine.local.aws import changes, streams
from engine.local.aws.housekeeping import freeze_heap, prune_shard_iterators
from engine.local.aws.persistence import Persister, State, StateDirectory, StateError, restore
from engine.local.aws.server import SerialisedMotoServer
from engine.local.controls import ControlError, LocalNotifier, create_topic, notifications, parse_prices
from engine.local.events import order_group_of, order_is_closing
from engine.local.functions import BACKGROUND, FunctionRegistry, Priorities
from engine.local.http_api import LocalHttpServer
from engine.local.pump import Consumer, DeadLetter, Deliver, StreamPump
from engine.local.scheduler import Schedule, Scheduler
from engine.local.settings import LocalSettings, configure_process_environment
from engine.local.view import TerminalView

log = logging.getLogger("engine.local")

#: (table variable, function): one event source mapping each.
STREAM_CONSUMERS = (
    ("ORDERS_TABLE", "order_executor"),
    ("ORDERS_TABLE", "position_update"),
    ("GROUPS_TABLE", "slot_release"),
)
#: The pump lane of each consumer (one thread a lane): the executor's records never wait behind a long
#: position_update batch.
SEND_LANE = "send"
#: Housekeeping runs after a pump pass at most this often (the send lane's passes are one record each).
HOUSEKEEPING_SECONDS = 0.5
#: How often what survived is set aside from the garbage collector's full walks (housekeeping.freeze_heap).
FREEZE_SECONDS = 30.0
SCHEDULED_FUNCTIONS = ("order_sync", "risk_engine")


class StartError(RuntimeError):
    """The runtime cannot start for a reason a user can fix (the message says which, in one line)."""


class LocalRuntime:
    """Everything `make run` starts; also the backend of :class:`LocalHttpServer`."""

    def __init__(self, settings: LocalSettings, out: TextIO, interactive: bool) -> None:
        self.settings = settings
        self._out = out
        self._interactive = interactive
        self.activity = ActivityLog(echo=None if interactive else out)
        self.priorities = Priorities()
        self.registry = FunctionRegistry(settings.functions_root, settings.region, self.priorities)
        self._moto = SerialisedMotoServer(settings.host, 0, admission=self.priorities.admit)
        self._http: LocalHttpServer | None = None
        self._http_thread: threading.Thread | None = None
        self._pump: StreamPump | None = None
        self._notifier: LocalNotifier | None = None
        self._scheduler: Scheduler | None = None
        self._view: TerminalView | None = None
        self._state_dir: StateDirectory | None = None
        self._persister: Persister | None = None
        self._housekeeping_lock = threading.Lock()
        self._tidied_at = 0.0
        self._frozen_at = 0.0
        self._trimmed: dict[str, int] = {}
        self.restored: dict[str, int] | None = None
        self.endpoint_url = ""
        self.webhook_secret = ""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start every part; on failure, stop what was started and re-raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        settings = self.settings
        self._http = _bind(settings.host, settings.port, self)
        state = self._open_state()
        self.endpoint_url = self._moto.start()
        configure_process_environment(self.endpoint_url, settings.region)
        if state is not None:
            started = time.monotonic()
            with self._moto.lock:
                self.restored = restore(state, settings.region)
            log.info("state restored in %.2f s: %s", time.monotonic() - started, self.restored)
        self._pump = self._build_pump(state)
        self._scheduler = self._build_scheduler(state)
        changes.add_listener(self._stream_written)
        if self._state_dir is not None:
            self._persister = Persister(
                self._state_dir, settings.region, self._moto.lock, state, interval=settings.save_seconds
            )
            pump, scheduler = self._pump, self._scheduler
            self._persister.sources.positions = pump.positions
            self._persister.sources.acknowledged = pump.acknowledged
            self._persister.sources.dead_letters = lambda: [letter.as_dict() for letter in pump.dead_letters]
            self._persister.sources.scheduler = scheduler.last_runs
            self._persister.start()
        self.webhook_secret = bootstrap.prepare(secrets.token_urlsafe(24))
        create_topic(settings.region)
        self._notifier = LocalNotifier(self.registry, settings.region, settings.stream_poll_seconds)
        self._load_functions()
        if self._persister is not None:
            self._persister.flush()
            self._persister.compact()
        log.info("%d objects set aside from garbage collection", freeze_heap())
        self._frozen_at = time.monotonic()
        self._pump.start()
        self._notifier.start()
        self._scheduler.start()
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="http", daemon=True)
        self._http_thread.start()
        self._print_banner()
        if self._interactive:
            self._view = TerminalView(
                self._banner_header(),
                bootstrap.read_state,
                lambda: len(self._pump.dead_letters) if self._pump else 0,
                self.activity,
                out=self._out,
            )
            self._view.start()

    def _load_functions(self) -> None:
        """Import every handler now (a warm container): the first burst of alerts pays no import."""
        names = {"webhook", "operator_api", *SCHEDULED_FUNCTIONS, *(name for _, name in STREAM_CONSUMERS)}
        for name in sorted(names):
            if self.registry.exists(name):
                self.registry.module(name)

    def _open_state(self) -> State | None:
        """Hold the state directory (``FRESH``: empty it) and read what it holds."""
        if self.settings.state_dir is None:
            return None
        directory = StateDirectory(self.settings.state_dir)
        try:
            directory.lock()
            self._state_dir = directory
            if self.settings.fresh:
                directory.wipe()
                return None
            return directory.load()
        except StateError as exc:
            raise StartError(f"{exc}; `make run FRESH=1` starts clean") from None
        except OSError as exc:
            raise StartError(f"cannot use the state directory {self.settings.state_dir}: {exc}") from None

    def stop(self) -> None:
        """Stop the server, the view, the scheduler, the pump and moto (in that order)."""
        if self._http is not None:
            if self._http_thread is not None:
                self._http.shutdown()
                self._http_thread.join(timeout=10)
            self._http.server_close()
            self._http = self._http_thread = None
        for part in (self._view, self._scheduler, self._pump, self._notifier):
            if part is not None:
                part.stop()
        self._view = self._scheduler = self._pump = self._notifier = None
        changes.remove_listener(self._stream_written)
        try:
            if self._persister is not None:
                self._persister.stop()
            elif self._state_dir is not None:
                self._state_dir.unlock()
        finally:
            self._persister = self._state_dir = None
            self._moto.stop()
            gc.unfreeze()  # what was set aside is the collector's again (a process that goes on, e.g. tests)

    def _stream_written(self, table: Table, hash_value: DynamoType, range_value: DynamoType | None) -> None:
        if table.stream_shard is not None and self._pump is not None:
            self._pump.notify()

    def _housekeeping(self) -> None:
        """After each pump pass: forget moto's old iterators; trim what every consumer acknowledged (and
        the journal holds). A lane finding another lane at it, or a pass within ``HOUSEKEEPING_SECONDS`` of
        the last tidy, skips."""
        if time.monotonic() - self._tidied_at < HOUSEKEEPING_SECONDS:
            return
        if not self._housekeeping_lock.acquire(blocking=False):
            return
        try:
            self._tidy()
            self._tidied_at = time.monotonic()
        finally:
            self._housekeeping_lock.release()

    def _tidy(self) -> None:
        prune_shard_iterators()
        if time.monotonic() - self._frozen_at >= FREEZE_SECONDS:
            freeze_heap()
            self._frozen_at = time.monotonic()
        if self._pump is None:
            return
        acknowledged = dict(self._pump.acknowledged())
        if self._notifier is not None and self._notifier.enabled:  # the events stream is the notifier's
            acknowledged.update(self._notifier.pump.acknowledged())
        for table, through in acknowledged.items():
            if through is None:
                continue
            if self._persister is not None:
                flushed = self._persister.flushed_through(table)
                through = min(through, flushed if flushed is not None else -1)
            if through <= self._trimmed.get(table, -1):
                continue
            with self._moto.lock:
                streams.trim(table, self.settings.region, through)
            self._trimmed[table] = through

    def _build_pump(self, state: State | None = None) -> StreamPump:
        consumers: list[Consumer] = []
        for variable, function in STREAM_CONSUMERS:
            if not self.registry.exists(function):
                log.warning(
                    "function %s not found under %s: its stream is not consumed",
                    function,
                    self.settings.functions_root,
                )
                continue
            table, target = os.environ[variable], self._stream_target(function)
            if function == "order_executor":
                consumers.append(
                    Consumer(function, table, target, SEND_LANE, order_group_of, 1, order_is_closing)
                )
            elif function == "position_update":
                consumers.append(
                    Consumer(function, table, target, "stream", order_group_of, None, order_is_closing)
                )
            else:
                consumers.append(Consumer(function, table, target))
        for variable in ("ORDERS_TABLE", "GROUPS_TABLE"):
            consumers.append(Consumer("activity", os.environ[variable], self.activity.observe_stream))
        return StreamPump(
            consumers,
            dynamodb=boto3.client("dynamodb", region_name=self.settings.region),
            streams=boto3.client("dynamodbstreams", region_name=self.settings.region),
            region=self.settings.region,
            poll_seconds=self.settings.stream_poll_seconds,
            after_pass=self._housekeeping,
            positions=state.positions if state else None,
            has_records=lambda table, after: streams.has_records_after(table, self.settings.region, after),
            dead_letters=[DeadLetter(**letter) for letter in state.dead_letters] if state else None,
            lane_setup=lambda _lane: self.priorities.assign(BACKGROUND),
        )

    def _stream_target(self, function: str) -> Deliver:
        def deliver(event: dict[str, Any]) -> Any:
            response = self.registry.invoke(function, event)
            if function == "slot_release":
                failures = response.get("batchItemFailures") if isinstance(response, Mapping) else None
                failed = {item.get("itemIdentifier") for item in failures or [] if isinstance(item, Mapping)}
                done = [r for r in event["Records"] if r["dynamodb"]["SequenceNumber"] not in failed]
                for group_id in released_groups(done):
                    self.activity.add(f"slot released by group {group_id[:8]}")
            return response

        return deliver

    def _build_scheduler(self, state: State | None = None) -> Scheduler:
        periods = {"order_sync": self.settings.sync_seconds, "risk_engine": self.settings.risk_seconds}
        schedules = []
        for function in SCHEDULED_FUNCTIONS:
            if self.registry.exists(function):
                schedules.append(Schedule(function, periods[function]))
            else:
                log.warning("function %s not found: not scheduled", function)
        last_runs = state.scheduler if state else None
        return Scheduler(schedules, self.registry.invoke, self.settings.region, last_runs)

    # ------------------------------------------------------------------ banner

    @property
    def url(self) -> str:
        """Base URL of the HTTP server."""
        return self._http.url if self._http else ""

    def info(self) -> dict[str, str]:
        """``GET /_local/info`` (DESIGN §6 fields plus the webhook secret's name)."""
        return {
            "aws_endpoint_url": self.endpoint_url,
            "region": self.settings.region,
            "parameter_prefix": os.environ["CONFIG_PREFIX"],
            "webhook_url": f"{self.url}/webhook",
            "webhook_secret_name": os.environ["WEBHOOK_SECRET_NAME"],
        }

    def _banner_header(self) -> list[str]:
        info = self.info()
        return [
            f"Execution engine (local) on {self.url}   webhook: {info['webhook_url']}"
            f"   secret: {self.webhook_secret}",
            f"AWS endpoint for config edits: {info['aws_endpoint_url']}  prefix {info['parameter_prefix']}"
            "   Ctrl-C stops",
        ]

    def _print_banner(self) -> None:
        info = self.info()
        prefix = info["parameter_prefix"]
        lines = [
            "Execution engine: local runtime ready",
            f"  Webhook URL:          {info['webhook_url']}",
            f"  Webhook secret:       {self.webhook_secret}",
            f"  Operator API:         {self.url}/groups  /queue  /pool  /risk  /equity  /events",
            f"  Local controls:       {self.url}/_local/prices  /_local/tick  /_local/info  /_local/status"
            "  /_local/notifications",
            f"  AWS endpoint:         {info['aws_endpoint_url']}  (region {info['region']}, any access key)",
            f"  Config parameters:    {prefix}engine  {prefix}pool  {prefix}queue  {prefix}risk  "
            f"{prefix}dca/default",
            "  Edit config like the console would, e.g.:",
            "    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws ssm put-parameter "
            f"--endpoint-url {info['aws_endpoint_url']} --region {info['region']} --overwrite "
            f"--type String --name {prefix}pool --value '{{\"max_open_groups\": 2}}'",
            f"  Changes apply within CONFIG_MAX_AGE_SECONDS={os.environ.get('CONFIG_MAX_AGE_SECONDS')} s.",
            "  TradingView alert message (Webhook URL above, paste this as the message):",
            alert_message(self.webhook_secret),
            "",
        ]
        print("\n".join(lines), file=self._out, flush=True)

    # ------------------------------------------------------------------ HTTP backend

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Invoke a function's handler (HTTP proxy requests)."""
        return self.registry.invoke(function, event)

    def webhook_handled(self, body: bytes, status: int, response_body: str) -> None:
        """One activity line per webhook answer."""
        try:
            tv = json.loads(body).get("tv") or {}
            what = f"{tv.get('exchange')} {tv.get('symbol')} {tv.get('timeframe')} {tv.get('action')}"
        except (ValueError, AttributeError):
            what = "unparsable body"
        try:
            answer = json.loads(response_body)
            result = answer.get("outcome") or answer.get("error") or answer.get("message")
            reason = answer.get("reason")
        except (ValueError, AttributeError):
            result, reason = response_body[:80], None
        self.activity.add(f"signal {what} -> {status} {result}" + (f": {reason}" if reason else ""))

    def local_control(
        self, method: str, name: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        """Answer ``/_local/<name>``."""
        routes = {
            "prices": ("POST", lambda: self._prices(query, body)),
            "tick": ("POST", self.tick),
            "info": ("GET", lambda: (200, self.info())),
            "status": ("GET", self.status),
            "notifications": ("GET", notifications),
        }
        if name not in routes:
            return 404, {"error": "not_found", "reason": f"no local control /_local/{name}"}
        allowed, action = routes[name]
        if method != allowed:
            return 405, {"error": "method_not_allowed", "reason": f"/_local/{name} takes {allowed}"}
        status, answer = action()
        if name == "info":  # the console asks which controls this runtime offers before using one
            answer = {**answer, "controls": sorted(routes)}
        return status, answer

    def _prices(self, query: dict[str, list[str]], body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            prices = parse_prices(body)
        except ControlError as exc:
            return 400, {"error": "bad_request", "reason": str(exc)}
        paper = bootstrap.paper_exchanges()
        wanted = [value.lower() for value in query.get("exchange", [])]
        unknown = [name for name in wanted if name not in paper]
        if unknown:
            return 400, {"error": "bad_request", "reason": f"not a paper account: {', '.join(unknown)}"}
        exchanges = wanted or paper
        bootstrap.set_prices(prices, exchanges)
        shown = ", ".join(f"{symbol} {price}" for symbol, price in prices.items())
        self.activity.add(f"prices set on {', '.join(exchanges)}: {shown}")
        return 200, {"exchanges": exchanges, "prices": bootstrap.jsonable(dict(prices))}

    def tick(self) -> tuple[int, dict[str, Any]]:
        """Drain the streams, run order_sync and risk_engine once (forced), then drain again until quiet.

        The first drain makes sure intents already written (pending orders) reached the exchange before
        order_sync looks for fills.
        """
        assert self._scheduler is not None and self._pump is not None
        answer: dict[str, Any] = {}
        ok = True
        before, _ = self._pump.drain()
        for function in SCHEDULED_FUNCTIONS:
            try:
                result = self._scheduler.run_now(function, force=True)
                answer[function] = {"ok": True, "result": _json_or_text(result)}
            except Exception as exc:
                log.exception("tick: %s failed", function)
                answer[function] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                ok = False
        drained, quiet = self._pump.drain()
        drained.add(before)
        answer.update(
            records_delivered=drained.delivered,
            failures=drained.failures,
            dead_letters=drained.dead_letters,
            dead_letters_total=len(self._pump.dead_letters),
            quiet=quiet,
        )
        return (200 if ok else 500), answer

    def status(self) -> tuple[int, dict[str, Any]]:
        """Pool, queue, open groups, dead letters and recent events."""
        answer: dict[str, Any] = {
            "dead_letters": [letter.as_dict() for letter in (self._pump.dead_letters if self._pump else [])],
            "events": self.activity.recent(),
        }
        try:
            state = bootstrap.read_state()
        except Exception as exc:
            log.exception("status: reading state failed")
            return 500, {"error": "status_unavailable", "reason": f"{type(exc).__name__}: {exc}", **answer}
        return 200, {"pool": state.pool, "queue": state.queue, "groups": state.groups, **answer}


def _bind(host: str, port: int, backend: LocalRuntime) -> LocalHttpServer:
    """The HTTP server on ``host:port``; :class:`StartError` in one line when the port is taken."""
    try:
        return LocalHttpServer((host, port), backend)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartError(
                f"port {port} on {host} is already in use: stop what listens there or choose another port, "
                f"e.g. PORT={port + 1 if port else 8081} make run"
            ) from None
        raise StartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _json_or_text(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=_default))
    except (TypeError, ValueError):
        return str(value)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)
