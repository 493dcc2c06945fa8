"""Receiving a TradingView signal (DESIGN §3.1): validate, authenticate, deduplicate, route.

Order of checks (the first failure raises; nothing is written before the idempotent step):

1. body over 8 KiB -> ``body_too_large``;
2. parse and validate (``engine.domain.signal.parse_signal``) -> its code;
3. authenticate: the body's ``secret`` (``hmac.compare_digest``) and/or an ``X-Signature`` header = hex
   HMAC-SHA256 of the raw body keyed with the webhook secret (``sha256=`` prefix accepted; header name
   case-insensitive). Neither present -> ``missing_secret``; any one present and wrong -> ``bad_secret`` /
   ``bad_signature``;
4. configuration (SSM unreadable with nothing cached -> :class:`~engine.config.ConfigUnavailable`, also
   when the market's DCA document is read during routing: raised out of the idempotent step, so
   Powertools deletes its in-progress record and the resend is processed afresh); timestamp window ->
   ``stale_signal`` / ``future_signal``;
5. account (``unknown_exchange``, ``unsupported_side``, ``account_config_invalid``: a config problem of
   that account, e.g. its secret outside the stack's namespace); quote in ``engine.usd_quotes`` else
   ``unsupported_quote`` (before the market lookup); market known (markets table, or the paper market
   table for a paper account) else ``unknown_symbol``; numbers held at the market's tick/step else
   ``out_of_range``. The market comes from the path's ONE read (``read_entry_state``: market, the key's
   locks, the pool counter and the account's counters in one batch), which the first routing attempt
   then uses (a re-route after a lost race reads afresh);
6. Powertools ``idempotent_function`` keyed on ``Signal.idempotency_key`` (DynamoDB table env
   ``IDEMPOTENCY_TABLE``) around :func:`engine.app.intake.routing.route_signal`: a resend of the same alert
   gets the first answer without running again. A delivery that finds the same alert in progress waits up
   to :data:`IN_PROGRESS_WAIT_SECONDS` for it, then raises ``IdempotencyAlreadyInProgressError``.

Refusals are :class:`~engine.domain.signal.SignalError` (code, field, reason); what they become on the
wire (status codes, bodies) is decided by the HTTP edge, :mod:`engine.api.webhook`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from botocore.config import Config

from engine.app.context import ConfigReader, EngineContext
from engine.app.intake.entries import entry_precision, read_entry_state
from engine.app.intake.routing import SignalContext, route_signal
from engine.config import ConfigUnavailable, DcaSelection, webhook_secret
from engine.domain.config import ConfigSnapshot
from engine.domain.models import Side, group_key
from engine.domain.signal import (
    Signal,
    SignalError,
    check_account,
    check_numbers,
    check_quote,
    check_timestamp,
    parse_signal,
)
from engine.store import EntryState
from engine.store.tables import IdempotencyModel, table_name

MAX_BODY_BYTES = 8192
SIGNATURE_HEADER = "x-signature"
IDEMPOTENCY_EXPIRES_SECONDS = 3600
#: How long a delivery waits for a concurrent delivery of the same alert to finish (TradingView: 3 s).
IN_PROGRESS_WAIT_SECONDS = 2.0
IN_PROGRESS_POLL_SECONDS = 0.1
#: Prefix of the idempotency records (stable across function renames and deployments).
IDEMPOTENCY_KEY_PREFIX = "webhook"

logger = Logger()


# --------------------------------------------------------------------------- idempotency store

_persistence_lock = threading.Lock()
_persistence: tuple[tuple[str, str | None, str | None], DynamoDBPersistenceLayer] | None = None


def idempotency_table() -> str:
    """Name of the idempotency table (env IDEMPOTENCY_TABLE): the local name outside Lambda, and
    ``MissingTableName`` inside Lambda when unset (like every table, ``engine.store.table_name``)."""
    return table_name(IdempotencyModel)


def persistence_layer() -> DynamoDBPersistenceLayer:
    """The process-wide Powertools persistence layer, created on first use (not at import: cold start,
    and tests start their AWS mock first) and re-created when the table, endpoint or region changes."""
    global _persistence
    identity = (
        idempotency_table(),
        os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL"),
        os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
    )
    with _persistence_lock:
        if _persistence is None or _persistence[0] != identity:
            layer = DynamoDBPersistenceLayer(
                table_name=identity[0],
                boto_config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 3}),
            )
            _persistence = (identity, layer)
        return _persistence[1]


def reset_persistence_layer() -> None:
    """Forget the persistence layer (tests switching AWS mocks)."""
    global _persistence
    with _persistence_lock:
        _persistence = None


@dataclass(frozen=True)
class Target:
    """One account an alert goes to (DESIGN §3.10) and the share of the alert's capital it puts in."""

    account: str
    size_multiplier: Decimal = Decimal(1)


class AccountsIncomplete(Exception):
    """Some accounts of a fanned-out alert failed in a way worth a resend (the others are done and keep
    their stored answers: the resend re-runs only the missing ones)."""

    def __init__(self, accounts: dict[str, dict[str, Any]], errors: dict[str, Exception]) -> None:
        super().__init__(f"accounts not done: {', '.join(sorted(errors))}")
        self.accounts = accounts
        self.errors = errors


def _route_once(
    *,
    data: dict[str, str],
    engine: EngineContext,
    signal: Signal,
    config: ConfigSnapshot,
    now: datetime,
    state: EntryState | None = None,
    target: Target | None = None,
) -> dict[str, str]:
    """The idempotent step of one account: route the signal (``data`` carries only the idempotency key)."""
    ctx = SignalContext(
        engine=engine,
        signal=signal,
        config=config,
        now=now,
        signal_id=data["key"],
        state=state,
        account="" if target is None else target.account,
        size_multiplier=Decimal(1) if target is None else target.size_multiplier,
    )
    return route_signal(ctx).body()


def _route_idempotently(
    engine: EngineContext,
    signal: Signal,
    config: ConfigSnapshot,
    now: datetime,
    lambda_context: Any,
    state: EntryState | None = None,
    target: Target | None = None,
) -> dict[str, str]:
    key = signal.idempotency_key(signal.exchange if target is None else target.account, now)
    routed = idempotent_function(
        _route_once,
        data_keyword_argument="data",
        persistence_store=persistence_layer(),
        config=IdempotencyConfig(
            expires_after_seconds=IDEMPOTENCY_EXPIRES_SECONDS, lambda_context=lambda_context
        ),
        key_prefix=IDEMPOTENCY_KEY_PREFIX,
    )
    deadline = time.monotonic() + IN_PROGRESS_WAIT_SECONDS
    while True:
        try:
            answer: dict[str, str] = routed(
                data={"key": key},
                engine=engine,
                signal=signal,
                config=config,
                now=now,
                state=state,
                target=target,
            )
            return answer
        except IdempotencyAlreadyInProgressError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(IN_PROGRESS_POLL_SECONDS)


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class ReadableConfig:
    """A :class:`ConfigReader` that raises :class:`ConfigUnavailable` instead of returning a read failure.

    An unreadable configuration would otherwise become a ``rejected`` answer, stored for an hour as the
    alert's idempotent answer; raising lets the HTTP edge answer 503 so TradingView resends.
    """

    inner: ConfigReader

    def snapshot(self) -> ConfigSnapshot:
        """The shared documents; :class:`ConfigUnavailable` when SSM could not be read."""
        snapshot = self.inner.snapshot()
        if snapshot.unreadable:
            raise ConfigUnavailable(", ".join(map(str, snapshot.unreadable)))
        return snapshot

    def dca(self, exchange: str, symbol: str, timeframe: int) -> DcaSelection:
        """The market's DCA settings; :class:`ConfigUnavailable` when SSM could not be read."""
        selection = self.inner.dca(exchange, symbol, timeframe)
        if selection.unreadable:
            raise ConfigUnavailable(selection.problem or selection.document)
        return selection


# --------------------------------------------------------------------------- validation


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def authenticate(signal: Signal, raw_body: bytes, headers: Mapping[str, str] | None) -> None:
    """Check the body secret and/or the ``X-Signature`` HMAC; :class:`SignalError` 401/403 otherwise."""
    signature = _header(headers, SIGNATURE_HEADER)
    if signal.secret is None and not signature:
        raise SignalError(
            "missing_secret",
            "no credentials: put the webhook secret in the body's secret field"
            " or sign the body (X-Signature)",
            "secret",
        )
    expected = webhook_secret()
    if signature:
        digest = hmac.new(expected.encode(), raw_body, hashlib.sha256).hexdigest()
        given = signature.strip().lower().removeprefix("sha256=")
        if not hmac.compare_digest(given.encode(), digest.encode()):
            raise SignalError(
                "bad_signature", "X-Signature is not the HMAC-SHA256 of the body", "X-Signature"
            )
    if signal.secret is not None and not hmac.compare_digest(signal.secret.encode(), expected.encode()):
        raise SignalError("bad_secret", "the secret does not match the webhook secret", "secret")


def signal_targets(signal: Signal, config: ConfigSnapshot) -> list[Target]:
    """The accounts an alert goes to (DESIGN §3.10), the first one first.

    The alert's own ``accounts`` list wins; else the enabled routes of its exchange (``routes``
    document); else the account named like the exchange. An exit also goes to every other account on
    the alert's exchange, whatever the routes say now, so a group opened under an older route is closed.
    """
    engine = config.engine
    own = signal.raw.get("accounts")
    if own is not None:
        if not isinstance(own, list) or not own or not all(isinstance(a, str) and a.strip() for a in own):
            raise SignalError("schema", "accounts must be a non-empty list of account names", "accounts")
        names = list(dict.fromkeys(name.strip().lower() for name in own))
        unknown = [name for name in names if name not in engine.accounts]
        if unknown:
            configured = ", ".join(sorted(engine.accounts)) or "none"
            raise SignalError(
                "unknown_account",
                f"accounts {', '.join(unknown)} not configured in engine.accounts (configured: {configured})",
                "accounts",
            )
        targets = [Target(name) for name in names]
    else:
        routes = config.routes.targets(signal.exchange)
        if routes is None:
            check_account(signal, engine.accounts)
            targets = [Target(signal.exchange.lower())]
        else:
            targets = [Target(route.account, route.size_multiplier) for route in routes]
    if signal.is_exit:
        named = {target.account for target in targets}
        targets += [Target(name) for name in engine.accounts_on(signal.exchange) if name not in named]
    return targets


def _check_target(
    ctx: EngineContext, signal: Signal, config: ConfigSnapshot, target: Target, now: datetime
) -> EntryState:
    """Account checks of one target, then its one read (the market and the key's state and counters)."""
    account_config = config.engine.accounts.get(target.account)
    if account_config is None:
        raise SignalError(
            "unknown_account", f"account {target.account!r} (routes) is not in engine.accounts", "routes"
        )
    if signal.is_entry and signal.side is Side.SHORT and account_config.market_type == "spot":
        raise SignalError(
            "unsupported_side",
            f"a sell that opens a short is refused: {target.account} is a spot account (long only); "
            "set market_type swap to trade shorts",
            "tv.action",
        )
    account_problem = config.account_problem(target.account)
    if account_problem is not None:
        raise SignalError("account_config_invalid", account_problem, "tv.exchange")
    key = group_key(target.account, signal.symbol, signal.timeframe, signal.side)
    state = read_entry_state(ctx.stores, target.account, signal.symbol, key, now)
    precision = entry_precision(state, target.account, signal.symbol, config)
    if precision is None:
        raise SignalError(
            "unknown_symbol",
            f"{signal.symbol} is not a market known for {target.account} (markets table"
            " or, for a paper account, the paper market table / engine.paper.markets)",
            "tv.symbol",
        )
    check_numbers(signal, precision.tick, precision.step)
    return state


def _validate(
    ctx: EngineContext, body: str | bytes, headers: Mapping[str, str] | None, now: datetime
) -> tuple[Signal, ConfigSnapshot, list[Target], EntryState | None]:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if len(raw) > MAX_BODY_BYTES:
        raise SignalError("body_too_large", f"request body over {MAX_BODY_BYTES // 1024} KiB")
    signal = parse_signal(raw)
    authenticate(signal, raw, headers)
    config = ctx.config.snapshot()
    check_timestamp(signal, now, config.engine.max_signal_age_seconds)
    targets = signal_targets(signal, config)
    check_quote(signal, config.engine.usd_quotes)
    # The one read of the first account's path: the market, and (for routing) the key's state and counters.
    state = _check_target(ctx, signal, config, targets[0], now) if targets else None
    return signal, config, targets, state


def _route_targets(
    ctx: EngineContext,
    signal: Signal,
    config: ConfigSnapshot,
    targets: list[Target],
    state: EntryState | None,
    now: datetime,
    lambda_context: Any,
) -> dict[str, Any]:
    """Route each account's step (its own idempotency record); the answer of the first account plus
    ``accounts`` (left out when a single account was reached by route, so such answers are unchanged).
    One account: its failure is raised as is. Several: an account refused by its checks answers
    ``rejected``; one that failed in a way worth a resend makes :class:`AccountsIncomplete`."""
    if not targets:
        return {"outcome": "ignored", "reason": "no enabled route for this exchange (routes)", "accounts": {}}
    accounts: dict[str, dict[str, Any]] = {}
    errors: dict[str, Exception] = {}
    for index, target in enumerate(targets):
        try:
            own_state = state if index == 0 else _check_target(ctx, signal, config, target, now)
            accounts[target.account] = _route_idempotently(
                ctx, signal, config, now, lambda_context, own_state, target
            )
        except SignalError as refused:
            if index == 0 or len(targets) == 1:
                raise
            accounts[target.account] = {"outcome": "rejected", "reason": refused.reason}
        except Exception as exc:
            if len(targets) == 1:
                raise
            errors[target.account] = exc
            accounts[target.account] = {"outcome": "error", "reason": f"{type(exc).__name__}: {exc}"}
    if errors:
        raise AccountsIncomplete(accounts, errors)
    first = accounts[targets[0].account]
    if len(targets) == 1 and "accounts" not in signal.raw:
        return first  # one account, not asked for by name: the answer of before the fan-out
    return {**first, "accounts": accounts}


def receive_signal(
    ctx: EngineContext,
    body: str | bytes,
    headers: Mapping[str, str] | None,
    now: datetime,
    *,
    lambda_context: Any = None,
) -> dict[str, Any]:
    """Handle one alert (raw body and headers) received at ``now``; the routed answer (module doc).

    Raises :class:`SignalError` for unacceptable input and lets the others through (``RoutingConflict``,
    ``StaleWrite``, ``IdempotencyAlreadyInProgressError``, ``SecretError``, ``ConfigUnavailable``, store
    failures) for the HTTP edge to answer. ``lambda_context`` (optional) lets Powertools expire an
    in-progress record when the invocation times out, so a resend after a crash is not blocked until the
    record expires.
    """
    ctx = replace(ctx, config=ReadableConfig(ctx.config))
    signal, config, targets, state = _validate(ctx, body, headers, now)
    answer = _route_targets(ctx, signal, config, targets, state, now, lambda_context)
    logger.info("signal routed", outcome=answer["outcome"], reason=answer["reason"], answer=answer)
    return answer
