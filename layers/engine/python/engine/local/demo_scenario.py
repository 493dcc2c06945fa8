"""The scripted scenarios `make demo` replays: config edits, prices, signals, ticks and operator calls.

A scenario is data. Each signal step says which outcome the script expects, so the report can show
where the engine behaved differently from the script. Prices are strings (exact decimals on the wire).

The ``full`` scenario (pool of 3): BTC, ETH and SOL open and fill the pool; XRP and DOGE queue. ETH
adds a second pyramid and both its grids fill while the price keeps falling; BTC and SOL (a "runner"
grid: one leg, a far take-profit) rise. The risk engine then closes ETH as the worst loser and pays for
it with part of BTC's profit; ETH's slot goes to the best queued signal. SOL exits, the next queued
signal takes its slot; DOGE's legs fill on a dip and its take-profits close it on the bounce; XRP
adds a pyramid. Then the protections (DESIGN §3.9): AVAX's alert carries a stop-loss under its grid and
is closed by it when the price falls through; LINK's document trails its take-profit, which follows the
price up and closes LINK on the pullback.

The ``small`` scenario (pool of 2, used by the tests) keeps one of each: a queued signal, a risk
offset with its promotion, and an exit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Risk settings that let the demo's loser qualify at once (timer without waiting).
_RISK_FAST = {"timer_start": "after_pyramids", "post_full_wait_minutes": 0, "loss_threshold_percent": -1.5}
#: A grid that holds on for a big move: one leg at the signal price, take-profit 30 % away.
RUNNER_GRID = {"levels": [{"gap_percent": 0, "weight_percent": 100, "tp_percent": 30}]}
#: One leg whose fixed take-profit is replaced by a trailing one (arms at +2 %, closes 0.5 % off the high).
TRAILING_GRID = {
    "levels": [{"gap_percent": 0, "weight_percent": 100, "tp_percent": 1}],
    "protection": {"trailing_take_profit": {"activation_percent": 2, "deviation_percent": 0.5}},
}


@dataclass(frozen=True)
class ConfigEdit:
    """Merge ``changes`` into the SSM document ``document`` (created when absent), as the console would."""

    document: str
    changes: dict[str, Any]
    note: str = ""


@dataclass(frozen=True)
class SetPrices:
    """``POST /_local/prices``."""

    prices: dict[str, str]
    note: str = ""


@dataclass(frozen=True)
class Entry:
    """A long entry signal (quote-sized) for ``symbol`` (``BTCUSDT``) on binance, timeframe 1."""

    symbol: str
    price: str
    size_usd: str
    expect: str
    note: str = ""
    #: The alert's ``risk.stop_loss`` (absolute price, DESIGN §3.9), or None.
    stop_loss: str | None = None


@dataclass(frozen=True)
class Exit:
    """The strategy's exit (sell to flat) for ``symbol``."""

    symbol: str
    price: str
    expect: str = "exited"
    note: str = ""


@dataclass(frozen=True)
class Tick:
    """``POST /_local/tick`` ``times`` times (sync, risk, drain streams)."""

    times: int = 2
    note: str = ""


Step = ConfigEdit | SetPrices | Entry | Exit | Tick


@dataclass(frozen=True)
class Scenario:
    """A named list of steps."""

    name: str
    description: str
    steps: tuple[Step, ...] = field(default_factory=tuple)


FULL = Scenario(
    name="full",
    description=(
        "Five symbols on a pool of 3: queued signals, pyramids, a risk offset (ETH closed as the worst "
        "loser, paid by BTC), promotions into freed slots, an exit (SOL) and take-profits (DOGE)."
    ),
    steps=(
        ConfigEdit("engine", {"max_signal_age_seconds": 7200}, "signals carry scripted candle times"),
        ConfigEdit("pool", {"max_open_groups": 3}, "a pool of 3 groups"),
        ConfigEdit("risk", {**_RISK_FAST, "required_pyramids": 2}, "timer after 2 filled pyramids"),
        ConfigEdit("dca/binance/BTCUSDT/1", RUNNER_GRID, "BTC runs: one leg, TP +30 %"),
        ConfigEdit("dca/binance/SOLUSDT/1", RUNNER_GRID, "SOL runs: one leg, TP +30 %"),
        SetPrices(
            {
                "BTC/USDT": "60000",
                "ETH/USDT": "3000",
                "SOL/USDT": "150",
                "XRP/USDT": "0.6",
                "DOGE/USDT": "0.15",
            }
        ),
        Entry("BTCUSDT", "60000", "1000", "opened"),
        Entry("ETHUSDT", "3000", "500", "opened"),
        Entry("SOLUSDT", "150", "1000", "opened", "the pool is now full"),
        Entry("XRPUSDT", "0.6", "500", "queued"),
        Entry("DOGEUSDT", "0.15", "500", "queued"),
        Tick(note="first legs fill"),
        SetPrices({"ETH/USDT": "2880"}, "ETH falls through its whole grid"),
        Tick(),
        Entry("ETHUSDT", "2880", "500", "pyramided", "a second ETH pyramid"),
        SetPrices(
            {"ETH/USDT": "2760", "BTC/USDT": "64000", "SOL/USDT": "158"},
            "ETH keeps falling, BTC and SOL rise",
        ),
        Tick(times=3, note="risk offset: ETH closed, BTC pays; a queued signal takes the slot"),
        Exit("SOLUSDT", "158"),
        Tick(note="SOL closed; the next queued signal takes its slot"),
        SetPrices({"DOGE/USDT": "0.143"}, "DOGE dips through its grid"),
        Tick(),
        SetPrices({"DOGE/USDT": "0.16"}, "DOGE bounces over its take-profits"),
        Tick(times=3, note="DOGE closed by its take-profits"),
        Entry("XRPUSDT", "0.6", "500", "pyramided", "a second XRP pyramid"),
        Tick(),
        SetPrices({"AVAX/USDT": "30"}),
        Entry("AVAXUSDT", "30", "500", "opened", "the alert carries risk.stop_loss 28.2", stop_loss="28.2"),
        Tick(note="AVAX's first leg fills"),
        SetPrices({"AVAX/USDT": "28.5"}, "AVAX falls through its whole grid, above the stop"),
        Tick(),
        SetPrices({"AVAX/USDT": "28.1"}, "AVAX falls through the stop"),
        Tick(times=3, note="AVAX closed by its stop-loss"),
        ConfigEdit(
            "dca/binance/LINKUSDT/1", TRAILING_GRID, "LINK: one leg, trailing take-profit 2 % / 0.5 %"
        ),
        SetPrices({"LINK/USDT": "15"}),
        Entry("LINKUSDT", "15", "1000", "opened"),
        Tick(note="LINK fills; no take-profit order is placed"),
        SetPrices({"LINK/USDT": "15.4"}, "LINK rises past the activation (15.30)"),
        Tick(),
        SetPrices({"LINK/USDT": "16"}, "the trail follows the high"),
        Tick(),
        SetPrices({"LINK/USDT": "15.9"}, "LINK falls back from its high 16 through the trail (15.92)"),
        Tick(times=3, note="LINK closed by its trailing take-profit"),
    ),
)

SMALL = Scenario(
    name="small",
    description="Three symbols on a pool of 2: a queued signal, a risk offset that promotes it, an exit.",
    steps=(
        ConfigEdit("engine", {"max_signal_age_seconds": 7200}, "signals carry scripted candle times"),
        ConfigEdit("pool", {"max_open_groups": 2}, "a pool of 2 groups"),
        ConfigEdit("risk", {**_RISK_FAST, "required_pyramids": 1}, "timer after 1 filled pyramid"),
        ConfigEdit("dca/binance/BTCUSDT/1", RUNNER_GRID, "BTC runs: one leg, TP +30 %"),
        SetPrices({"BTC/USDT": "60000", "ETH/USDT": "3000", "SOL/USDT": "150"}),
        Entry("BTCUSDT", "60000", "1000", "opened"),
        Entry("ETHUSDT", "3000", "500", "opened", "the pool is now full"),
        Entry("SOLUSDT", "150", "500", "queued"),
        Tick(),
        SetPrices({"ETH/USDT": "2880", "BTC/USDT": "63000"}, "ETH falls through its grid, BTC rises"),
        Tick(times=3, note="risk offset: ETH closed, BTC pays; SOL takes the slot"),
        Exit("BTCUSDT", "63000"),
        Tick(),
    ),
)

SCENARIOS = {scenario.name: scenario for scenario in (FULL, SMALL)}
