"""Live configuration documents (DESIGN §3, §4): pydantic models, defaults and validation.

Each SSM parameter holds one JSON document: ``engine``, ``pool``, ``queue``, ``risk``, ``dca/default``
and ``dca/<exchange>/<SYMBOLNOSLASH>/<timeframe>``. Every field has the DESIGN default, so ``{}`` is a
valid document. Unknown keys are refused (an operator's typo must not be silently ignored). Numbers
may be JSON numbers or strings; decimals are parsed exactly (never through float).

``parse_document`` raises :class:`ConfigError` naming the document and the field, e.g.
``dca/default: levels: weights sum to 90, expected 100``.

Pure: no boto3/SSM here (``engine.config`` reads the parameters and builds a :class:`ConfigSnapshot`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal, overload

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.domain.models import OrderType, TpMode

NonNegativeDecimal = Annotated[Decimal, Field(ge=0)]
PositiveDecimal = Annotated[Decimal, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(ge=1)]

#: Quote currencies that count 1:1 as USD (DESIGN §3.5), the default of ``engine.usd_quotes``.
DEFAULT_USD_QUOTES: tuple[str, ...] = ("USDT", "USDC", "USD", "FDUSD")

#: Tolerance of the DCA weight sum (DESIGN §3.3: 100 ± 0.01).
WEIGHT_TOLERANCE = Decimal("0.01")
QueueRuleName = Literal["pyramid_continuation", "deepest_loss", "replacement_count", "oldest"]
QUEUE_RULE_NAMES: tuple[QueueRuleName, ...] = (
    "pyramid_continuation",
    "deepest_loss",
    "replacement_count",
    "oldest",
)


class ConfigError(Exception):
    """An invalid configuration document: which document, which field, why.

    ``field`` is a dotted path (``levels.2.weight_percent``) or ``""`` for the document as a whole.
    ``problems`` lists every (field, reason) found; ``field``/``reason`` are the first of them.
    """

    def __init__(
        self,
        document: str,
        field: str,
        reason: str,
        problems: list[tuple[str, str]] | None = None,
    ) -> None:
        self.document = document
        self.field = field
        self.reason = reason
        self.problems = problems if problems is not None else [(field, reason)]
        super().__init__(str(self))

    def __str__(self) -> str:
        head = (
            f"{self.document}: {self.field}: {self.reason}"
            if self.field
            else f"{self.document}: {self.reason}"
        )
        more = len(self.problems) - 1
        return f"{head} (and {more} more)" if more > 0 else head


class _Document(BaseModel):
    """Base of all configuration models: unknown keys refused, values immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# --------------------------------------------------------------------------- engine


class AccountConfig(_Document):
    """One exchange account: paper or live, spot (long only) or swap (may short)."""

    mode: Literal["paper", "live"] = "paper"
    market_type: Literal["spot", "swap"] = "spot"
    #: Secrets Manager name of the API keys (default ``<app>/<stage>/exchange/<name>``).
    secret_name: str | None = None
    sandbox: bool = False
    #: The exchange this account trades on (DESIGN §3.10; default: the account's own name), e.g.
    #: ``"binance-sub": {"exchange": "binance"}``. Markets, prices and DCA documents are the exchange's.
    exchange: str | None = None
    #: Per-account overrides of ``engine.max_total_exposure_usd`` / ``engine.max_daily_loss_usd``.
    max_total_exposure_usd: NonNegativeDecimal | None = None
    max_daily_loss_usd: NonNegativeDecimal | None = None

    @field_validator("exchange")
    @classmethod
    def _lowercase_exchange(cls, exchange: str | None) -> str | None:
        if exchange is None:
            return None
        cleaned = exchange.strip().lower()
        if not cleaned:
            raise ValueError("exchange must not be empty (leave it out to use the account's name)")
        return cleaned


class PaperMarket(_Document):
    """Trading rules of an extra market for the paper exchange."""

    tick: PositiveDecimal
    step: PositiveDecimal
    min_qty: NonNegativeDecimal = Decimal(0)
    min_notional: NonNegativeDecimal = Decimal(0)
    #: Base coin per contract when a swap account trades it (``step``/``min_qty`` stay in the base coin).
    contract_size: PositiveDecimal = Decimal(1)


class PaperConfig(_Document):
    """The built-in paper exchange: fee, starting balance and extra markets (symbol -> rules)."""

    fee_percent: NonNegativeDecimal = Decimal("0.1")
    balance_usd: NonNegativeDecimal = Decimal(10000)
    markets: dict[str, PaperMarket] = Field(default_factory=dict)


def _default_accounts() -> dict[str, AccountConfig]:
    return {name: AccountConfig() for name in ("binance", "bybit", "okx")}


class EngineConfig(_Document):
    """The ``engine`` document: global switches, limits, accounts and the paper exchange."""

    paused: bool = False
    max_open_per_symbol: NonNegativeInt = 3
    max_total_exposure_usd: NonNegativeDecimal = Decimal(10000)
    max_daily_loss_usd: NonNegativeDecimal = Decimal(500)
    max_signal_age_seconds: PositiveInt = 300
    #: Seconds between two fast passes of order_sync (fills, prices, triggers; DESIGN §1). At most 60:
    #: the minute schedule runs one anyway. Whole seconds, as SQS ``DelaySeconds`` are.
    sync_interval_seconds: Annotated[int, Field(ge=1, le=60)] = 5
    accounts: dict[str, AccountConfig] = Field(default_factory=_default_accounts)
    paper: PaperConfig = Field(default_factory=PaperConfig)
    #: Quote currencies counted 1:1 as USD; a signal for any other quote is 400 ``unsupported_quote``.
    usd_quotes: list[str] = Field(default_factory=lambda: list(DEFAULT_USD_QUOTES))

    @field_validator("usd_quotes")
    @classmethod
    def _uppercase_quotes(cls, quotes: list[str]) -> list[str]:
        cleaned = [quote.strip().upper() for quote in quotes]
        if not cleaned or any(not quote for quote in cleaned):
            raise ValueError("list at least one quote currency, none empty")
        return cleaned

    @field_validator("accounts")
    @classmethod
    def _lowercase_account_names(cls, accounts: dict[str, AccountConfig]) -> dict[str, AccountConfig]:
        lowered: dict[str, AccountConfig] = {}
        for name, account in accounts.items():
            key = name.strip().lower()
            if not key:
                raise ValueError("account names must not be empty")
            if key in lowered:
                raise ValueError(f"account {key!r} is configured twice (names are case-insensitive)")
            lowered[key] = account
        return lowered

    def account(self, exchange: str) -> AccountConfig | None:
        """The account configured for ``exchange`` (case-insensitive), or None."""
        return self.accounts.get(exchange.strip().lower())

    def exchange_of(self, account: str) -> str:
        """The exchange ``account`` trades on: its ``exchange``, else its own name (lower case)."""
        name = account.strip().lower()
        configured = self.accounts.get(name)
        return configured.exchange if configured is not None and configured.exchange else name

    def accounts_on(self, exchange: str) -> list[str]:
        """Every configured account trading on ``exchange``, the one named like it first."""
        wanted = exchange.strip().lower()
        found = sorted(name for name in self.accounts if self.exchange_of(name) == wanted)
        return sorted(found, key=lambda name: name != wanted)

    def for_account(self, account: str) -> EngineConfig:
        """This document with ``account``'s own exposure and daily-loss limits, where it sets them."""
        configured = self.accounts.get(account.strip().lower())
        if configured is None:
            return self
        update: dict[str, Decimal] = {}
        if configured.max_total_exposure_usd is not None:
            update["max_total_exposure_usd"] = configured.max_total_exposure_usd
        if configured.max_daily_loss_usd is not None:
            update["max_daily_loss_usd"] = configured.max_daily_loss_usd
        return self.model_copy(update=update) if update else self


# --------------------------------------------------------------------------- pool / queue


class PoolAccount(_Document):
    """``pool.accounts.<name>``: an account's own pool size."""

    max_open_groups: NonNegativeInt


class PoolConfig(_Document):
    """The ``pool`` document (DESIGN §3.6): the pool of each account (§3.10)."""

    max_open_groups: NonNegativeInt = 10
    pyramids_bypass: bool = True
    #: Per-account ``max_open_groups`` overrides.
    accounts: dict[str, PoolAccount] = Field(default_factory=dict)

    @field_validator("accounts")
    @classmethod
    def _lowercase_pool_accounts(cls, accounts: dict[str, PoolAccount]) -> dict[str, PoolAccount]:
        return {name.strip().lower(): value for name, value in accounts.items()}

    def max_open_for(self, account: str) -> int:
        """The pool size of ``account``: its override, else ``max_open_groups``."""
        override = self.accounts.get(account.strip().lower())
        return override.max_open_groups if override is not None else self.max_open_groups


class QueueRule(_Document):
    """One promotion rule of the queue, applied in list order."""

    name: QueueRuleName
    enabled: bool = True


def _default_queue_rules() -> list[QueueRule]:
    return [QueueRule(name=name) for name in QUEUE_RULE_NAMES]


class QueueConfig(_Document):
    """The ``queue`` document: ordered promotion rules and the maximum age of a queued signal."""

    rules: list[QueueRule] = Field(default_factory=_default_queue_rules)
    max_age_minutes: PositiveInt = 1440

    @field_validator("rules")
    @classmethod
    def _no_duplicate_rules(cls, rules: list[QueueRule]) -> list[QueueRule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"rule {rule.name!r} is listed twice")
            seen.add(rule.name)
        return rules

    @property
    def enabled_rules(self) -> list[QueueRuleName]:
        """Names of the enabled rules, in priority order."""
        return [rule.name for rule in self.rules if rule.enabled]


# --------------------------------------------------------------------------- risk


class RiskConfig(_Document):
    """The ``risk`` document (DESIGN §3.8)."""

    interval_minutes: PositiveInt = 1
    timer_start: Literal["after_pyramids", "after_all_dca_submitted", "after_all_dca_filled"] = (
        "after_pyramids"
    )
    required_pyramids: PositiveInt = 3
    #: Unrealised pnl % at or below which the timer starts; a loss, so ≤ 0.
    loss_threshold_percent: Annotated[Decimal, Field(le=0)] = Decimal("-1.5")
    post_full_wait_minutes: NonNegativeInt = 15
    reset_timer_on_replacement: bool = False
    #: 0 = no age filter.
    min_age_minutes: NonNegativeInt = 0
    max_winners_to_combine: PositiveInt = 3
    fee_percent: NonNegativeDecimal = Decimal("0.1")
    min_close_notional: NonNegativeDecimal = Decimal(10)


# --------------------------------------------------------------------------- dca


class DcaLevel(_Document):
    """One leg of a DCA grid: signed gap from the base price, share of the capital, take-profit %."""

    gap_percent: Decimal
    weight_percent: PositiveDecimal
    #: Must be > 0: a 0 % take-profit sells at the entry price and loses the fees.
    tp_percent: PositiveDecimal


def _format_decimal(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text


def _check_levels(levels: list[DcaLevel]) -> list[DcaLevel]:
    if not levels:
        raise ValueError("at least one level is required")
    total = sum((level.weight_percent for level in levels), Decimal(0))
    if abs(total - 100) > WEIGHT_TOLERANCE:
        raise ValueError(f"weights sum to {_format_decimal(total)}, expected 100")
    return levels


DcaLevels = Annotated[list[DcaLevel], AfterValidator(_check_levels)]


def _default_levels() -> list[DcaLevel]:
    rows = [("0", "1"), ("-0.5", "0.5"), ("-1", "0.5"), ("-2", "0.5"), ("-4", "0.5")]
    return [
        DcaLevel(gap_percent=Decimal(gap), weight_percent=Decimal(20), tp_percent=Decimal(tp))
        for gap, tp in rows
    ]


class DcaPyramid(_Document):
    """Override for pyramid k (``pyramids[k-1]``): its own levels and/or capital."""

    levels: DcaLevels | None = None
    capital_usd: PositiveDecimal | None = None


class TrailingTakeProfit(_Document):
    """``protection.trailing_take_profit`` (DESIGN §3.9): arms at avg * (1 + activation %), then closes when
    the price falls ``deviation_percent`` from the highest price seen since (short mirrored)."""

    activation_percent: PositiveDecimal
    deviation_percent: PositiveDecimal

    @model_validator(mode="after")
    def _deviation_below_activation(self) -> TrailingTakeProfit:
        if self.deviation_percent >= self.activation_percent:
            raise ValueError(
                f"deviation_percent {_format_decimal(self.deviation_percent)} must be below "
                f"activation_percent {_format_decimal(self.activation_percent)}"
            )
        return self


class TrailingStop(_Document):
    """``protection.trailing_stop``: a stop ``distance_percent`` under the highest price seen, never lower;
    armed at the first fill (``activation_percent`` 0) or once the price reaches avg * (1 + activation %)."""

    distance_percent: Annotated[Decimal, Field(gt=0, lt=100)]
    activation_percent: NonNegativeDecimal = Decimal(0)


class ProtectionConfig(_Document):
    """The ``protection`` object of a DCA document (DESIGN §3.9); every rule is off by default."""

    #: Stop-loss at basis * (1 - pct/100) for long (* (1 + pct/100) short); None = no percent stop.
    stop_loss_percent: Annotated[Decimal, Field(gt=0, lt=100)] | None = None
    stop_loss_basis: Literal["average", "first_entry"] = "average"
    stop_loss_after: Literal["first_fill", "all_legs_filled"] = "first_fill"
    trailing_take_profit: TrailingTakeProfit | None = None
    trailing_stop: TrailingStop | None = None
    #: After this many leg take-profits filled, the stop rises to break-even (net of fees).
    breakeven_after_tp_legs: PositiveInt | None = None
    #: Close at market this long after the group was created.
    time_limit_minutes: PositiveInt | None = None

    @property
    def any_rule(self) -> bool:
        """True when at least one rule is configured."""
        return any(
            value is not None
            for value in (
                self.stop_loss_percent,
                self.trailing_take_profit,
                self.trailing_stop,
                self.breakeven_after_tp_legs,
                self.time_limit_minutes,
            )
        )


class DcaConfig(_Document):
    """A ``dca/...`` document (DESIGN §3.3)."""

    levels: DcaLevels = Field(default_factory=_default_levels)
    pyramids: list[DcaPyramid] = Field(default_factory=list)
    entry_order_type: OrderType = OrderType.LIMIT
    tp_mode: TpMode = TpMode.PER_LEG
    tp_aggregate_percent: PositiveDecimal = Decimal("1.0")
    max_pyramids: PositiveInt = 5
    #: Capital of a pyramid when the signal carries no ``order_size``.
    capital_usd: PositiveDecimal = Decimal(200)
    #: A take-profit that leaves the group holding nothing (its newest pyramid filled at least once)
    #: cancels the resting entry legs and closes the group, freeing its slot (DESIGN §3.5).
    close_when_flat: bool = True
    #: Stop-loss, trailing take-profit / stop, break-even, time limit (DESIGN §3.9); all off by default.
    protection: ProtectionConfig = Field(default_factory=ProtectionConfig)

    @model_validator(mode="after")
    def _protection_fits_tp_mode(self) -> DcaConfig:
        if self.protection.breakeven_after_tp_legs is None:
            return self
        if self.tp_mode not in (TpMode.PER_LEG, TpMode.HYBRID):
            raise ValueError(
                f"protection.breakeven_after_tp_legs needs leg take-profits (tp_mode per_leg or hybrid), "
                f"not tp_mode {TpMode(self.tp_mode).value}"
            )
        return self

    def _override(self, pyramid: int) -> DcaPyramid | None:
        return self.pyramids[pyramid - 1] if 1 <= pyramid <= len(self.pyramids) else None

    def levels_for(self, pyramid: int) -> list[DcaLevel]:
        """Levels of pyramid ``pyramid`` (1 = the first entry): its override, else ``levels``."""
        override = self._override(pyramid)
        return override.levels if override is not None and override.levels is not None else self.levels

    def capital_for(self, pyramid: int) -> Decimal:
        """Configured capital of pyramid ``pyramid`` (used only when the signal has no order_size)."""
        override = self._override(pyramid)
        if override is not None and override.capital_usd is not None:
            return override.capital_usd
        return self.capital_usd


# --------------------------------------------------------------------------- routes


class Route(_Document):
    """One account an alert of a TradingView exchange goes to (DESIGN §3.10)."""

    account: str
    size_multiplier: PositiveDecimal = Decimal(1)
    enabled: bool = True

    @field_validator("account")
    @classmethod
    def _lowercase_account(cls, account: str) -> str:
        cleaned = account.strip().lower()
        if not cleaned:
            raise ValueError("account must not be empty")
        return cleaned


def _default_routes() -> dict[str, list[Route]]:
    return {name.upper(): [Route(account=name)] for name in ("binance", "bybit", "okx")}


class RoutesConfig(RootModel[dict[str, list[Route]]]):
    """The ``routes`` document: TradingView exchange (upper case) -> the accounts its alerts go to.

    An exchange without a route goes to the account named like it."""

    model_config = ConfigDict(frozen=True)
    root: dict[str, list[Route]] = Field(default_factory=_default_routes)

    @field_validator("root")
    @classmethod
    def _uppercase_exchanges(cls, routes: dict[str, list[Route]]) -> dict[str, list[Route]]:
        return {name.strip().upper(): value for name, value in routes.items()}

    def targets(self, exchange: str) -> list[Route] | None:
        """The enabled routes of ``exchange`` (None: no route configured for it)."""
        routes = self.root.get(exchange.strip().upper())
        return None if routes is None else [route for route in routes if route.enabled]


# --------------------------------------------------------------------------- notify

NotifyEventName = Literal["opened", "closed", "risk_action", "protection", "rejected", "error", "operator"]
DEFAULT_NOTIFY_EVENTS: tuple[NotifyEventName, ...] = (
    "opened",
    "closed",
    "risk_action",
    "protection",
    "rejected",
    "error",
)


class TelegramConfig(_Document):
    """Telegram delivery: on/off and the chat (the bot token is the secret ``<app>/<stage>/telegram``)."""

    enabled: bool = False
    chat_id: str = ""

    @field_validator("chat_id", mode="before")
    @classmethod
    def _chat_id_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class NotifyConfig(_Document):
    """The ``notify`` document (DESIGN §3.11): which events become messages, and where they go."""

    events: list[NotifyEventName] = Field(default_factory=lambda: list(DEFAULT_NOTIFY_EVENTS))
    sns: bool = True
    telegram: TelegramConfig = Field(default_factory=TelegramConfig)


# --------------------------------------------------------------------------- documents

DOCUMENT_MODELS: dict[str, type[BaseModel]] = {
    "engine": EngineConfig,
    "pool": PoolConfig,
    "queue": QueueConfig,
    "risk": RiskConfig,
    "dca/default": DcaConfig,
    "notify": NotifyConfig,
    "routes": RoutesConfig,
}


def dca_document_name(exchange: str, symbol: str, timeframe: int) -> str:
    """Name of the per-market DCA document: ``dca/binance/BTCUSDT/60``."""
    plain_symbol = symbol.replace("/", "").replace(":", "").upper()
    return f"dca/{exchange.strip().lower()}/{plain_symbol}/{int(timeframe)}"


def model_for(name: str) -> type[BaseModel]:
    """The model of document ``name`` (any ``dca/...`` name is a :class:`DcaConfig`)."""
    model = DOCUMENT_MODELS.get(name)
    if model is not None:
        return model
    if name.startswith("dca/") and len(name) > len("dca/"):
        return DcaConfig
    raise ConfigError(
        name, "", f"unknown configuration document (known: {', '.join(DOCUMENT_MODELS)}, dca/...)"
    )


def _refuse_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not a valid number")


def _reason(error: Any) -> str:
    """A readable reason from one pydantic error entry."""
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field (not a setting of this document; check the spelling)"
    if kind == "missing":
        return "required field is missing"
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", error.get("msg", "invalid value")))
    message = str(error.get("msg", "invalid value"))
    message = message[:1].lower() + message[1:]
    value = error.get("input")
    if isinstance(value, str | int | float | Decimal | bool) or value is None:
        message = f"{message}, got {json.dumps(value, default=str)}"
    return message


def _field(error: Any) -> str:
    return ".".join(str(part) for part in error.get("loc", ()))


@overload
def parse_document(name: Literal["engine"], text: str | bytes) -> EngineConfig: ...
@overload
def parse_document(name: Literal["pool"], text: str | bytes) -> PoolConfig: ...
@overload
def parse_document(name: Literal["queue"], text: str | bytes) -> QueueConfig: ...
@overload
def parse_document(name: Literal["risk"], text: str | bytes) -> RiskConfig: ...
@overload
def parse_document(name: str, text: str | bytes) -> BaseModel: ...
def parse_document(name: str, text: str | bytes) -> BaseModel:
    """Parse and validate document ``name`` from its JSON text; :class:`ConfigError` when invalid."""
    model = model_for(name)
    try:
        data = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(name, "", f"not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(name, "", f"must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [(_field(error), _reason(error)) for error in exc.errors()]
        first_field, first_reason = problems[0]
        raise ConfigError(name, first_field, first_reason, problems) from exc


def _jsonable(value: Any) -> Any:
    """Python dump -> JSON values; decimals become JSON numbers when that is exact."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    return value


def dump_document(model: BaseModel) -> str:
    """Pretty JSON of a configuration model, numbers as JSON numbers (what an operator edits)."""
    return json.dumps(_jsonable(model.model_dump(mode="python")), indent=2) + "\n"


def default_documents() -> dict[str, str]:
    """Every shared document with its defaults (name -> JSON): what the stack and local runtime seed."""
    return {name: dump_document(model()) for name, model in DOCUMENT_MODELS.items()}


# --------------------------------------------------------------------------- snapshot


@dataclass(frozen=True)
class ConfigProblem:
    """A shared document without any valid version: which ``document``, and ``text`` for people.

    ``str()`` gives the text (e.g. ``"risk (no valid version; latest 3: ...)"``); code that reacts to a
    problem checks ``document``.
    """

    document: str
    text: str
    #: SSM could not be read (nothing cached): transient, unlike a document without a valid version.
    unreadable: bool = False
    #: Set when the problem concerns one account only (``engine.accounts.<account>``): that account is
    #: not traded, the others are.
    account: str | None = None

    def __str__(self) -> str:
        return self.text


@dataclass
class ConfigSnapshot:
    """The configuration one invocation works with.

    ``versions``: document name -> SSM version used. ``problems``: documents with no valid version at all
    (their defaults stand in so positions are still managed, but new entries are refused).
    """

    engine: EngineConfig = field(default_factory=EngineConfig)
    pool: PoolConfig = field(default_factory=PoolConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    routes: RoutesConfig = field(default_factory=RoutesConfig)
    versions: dict[str, int] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)

    @property
    def unreadable(self) -> list[ConfigProblem]:
        """The problems that are SSM read failures (transient: a retry may succeed)."""
        return [problem for problem in self.problems if problem.unreadable]

    @property
    def refusal_reason(self) -> str | None:
        """Why new entries are refused (a document without any valid version), or None.

        Problems of one account (``ConfigProblem.account``) refuse only that account: :meth:`account_problem`.
        """
        shared = [problem for problem in self.problems if problem.account is None]
        if not shared:
            return None
        return "configuration invalid, no valid version of: " + ", ".join(map(str, shared))

    def account_problem(self, account: str) -> str | None:
        """Why account ``account`` (case-insensitive) must not be traded, or None."""
        name = account.strip().lower()
        found = [str(p) for p in self.problems if p.account is not None and p.account.lower() == name]
        return "; ".join(found) or None
