"""Protections on a refresh (DESIGN §3.9): evaluate the DCA document's ``protection`` rules and the alert's
stop / take-profit for a group at the last observed price, and record a trigger.

:func:`refresh_group <engine.app.positions.refresh.refresh_group>` calls :func:`evaluate_protections`
for every open group that is not yet closing, on every fast sync pass (and on every fill): the state kept
on the group (``Group.protection``) moves only in whole ticks, so a pass over an unchanged market saves
nothing. A trigger turns the group ``closing`` with the rule's ``close_reason`` — the same close path as an
exit: resting legs and TPs cancelled, one market close for what is held, the slot freed when closed — and
:func:`record_trigger` writes the protection event (``risk_actions``, action ``protection``, one per
group: its id is derived from the group id).

Decisions: the DCA document is read live (the cached config, like ``close_when_flat``), so an edit
applies to open groups at once; the fee rate of the break-even stop is ``engine.paper.fee_percent`` on a
paper account and ``risk.fee_percent`` on a live one; "holds" means at least one step.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from engine.app.context import EngineContext, Stores
from engine.domain.accounting import fill_price
from engine.domain.config import ConfigSnapshot, ProtectionConfig
from engine.domain.models import (
    CloseReason,
    Group,
    MarketPrecision,
    Order,
    OrderPurpose,
    OrderStatus,
    ProtectionState,
)
from engine.domain.protection import ProtectionInputs, Trigger, evaluate
from engine.store import RiskActionRecord

__all__ = [
    "PROTECTION_ACTION",
    "evaluate_protections",
    "protection_event_id",
    "protection_settings",
    "record_trigger",
]

#: ``action`` of the record a protection trigger writes.
PROTECTION_ACTION = "protection"
_HUNDRED = Decimal(100)


def protection_settings(ctx: EngineContext, group: Group) -> ProtectionConfig:
    """The ``protection`` object of the group's DCA document (per market, else ``dca/default``)."""
    return ctx.config.dca(group.exchange, group.symbol, group.timeframe).config.protection


def _fee_rate(group: Group, cfg: ConfigSnapshot) -> Decimal:
    account = cfg.engine.account(group.exchange)
    if account is not None and account.mode == "live":
        return cfg.risk.fee_percent / _HUNDRED
    return cfg.engine.paper.fee_percent / _HUNDRED


def _first_entry(group: Group, orders: Sequence[Order]) -> Decimal | None:
    first = group.pyramids[0].index if group.pyramids else 1
    for order in orders:
        if order.purpose == OrderPurpose.ENTRY and order.pyramid == first and order.leg == 1:
            return fill_price(order) if order.filled > 0 else None
    return None


def _leg_tps_filled(orders: Sequence[Order]) -> int:
    return len(
        {
            o.parent_order_id
            for o in orders
            if o.purpose == OrderPurpose.TP
            and o.parent_order_id is not None
            and o.status == OrderStatus.FILLED
        }
    )


def protection_inputs(
    group: Group,
    orders: Sequence[Order],
    precision: MarketPrecision,
    price: Decimal | None,
    cfg: ConfigSnapshot,
    now: datetime,
) -> ProtectionInputs:
    """What the pure evaluation looks at, from the group (figures just recomputed) and its orders."""
    figures = group.figures
    return ProtectionInputs(
        side=group.side,
        price=price,
        now=now,
        created_at=group.created_at,
        holds=figures.quantity >= precision.step,
        avg_entry=figures.avg_entry,
        first_entry=_first_entry(group, orders),
        any_fill=any(o.purpose == OrderPurpose.ENTRY and o.filled > 0 for o in orders),
        all_legs_filled=figures.total_legs > 0 and figures.filled_legs >= figures.total_legs,
        leg_tps_filled=_leg_tps_filled(orders),
        pyramid_count=group.pyramid_count,
        tick=precision.tick,
        fee_rate=_fee_rate(group, cfg),
    )


def evaluate_protections(
    settings: ProtectionConfig,
    group: Group,
    orders: Sequence[Order],
    precision: MarketPrecision,
    price: Decimal | None,
    cfg: ConfigSnapshot,
    now: datetime,
) -> Trigger | None:
    """Evaluate the protections; ``group.protection`` gets the next state, the trigger is returned.

    Nothing is evaluated (and nothing changes) for a group without any rule or alert level.
    """
    state = group.protection
    if not settings.any_rule and state == ProtectionState():
        return None
    result = evaluate(settings, state, protection_inputs(group, orders, precision, price, cfg, now))
    group.protection = result.state
    return result.trigger


def protection_event_id(group_id: str) -> str:
    """Id of the protection event of a group (a group closes once: one event, replays overwrite it)."""
    return f"protection-{group_id}"


def record_trigger(
    stores: Stores,
    group: Group,
    trigger: Trigger,
    price: Decimal | None,
    document: tuple[str, int],
    now: datetime,
) -> None:
    """Record the protection that started closing ``group`` (after its ``closing`` state was saved);
    ``document``: the DCA document (name, SSM version) whose rules were in force."""
    state = group.protection
    stores.risk_actions.record(
        RiskActionRecord(
            id=protection_event_id(group.id),
            at=now,
            action=PROTECTION_ACTION,
            reason=trigger.note,
            group_id=group.id,
            details={
                "rule": CloseReason(trigger.reason).value,
                "account": group.account,
                "symbol": group.symbol,
                "side": group.side.value,
                "price": price,
                "level": trigger.level,
                "avg_entry": group.figures.avg_entry,
                "quantity": group.figures.quantity,
                "unrealized_pnl_usd": group.figures.unrealized_pnl_usd,
                "stop_price": state.stop_price,
                "high": state.high,
                "trail_price": state.trail_price,
                "alert_stop": state.alert_stop,
                "alert_take_profit": state.alert_take_profit,
                "alert_config_version": state.alert_config_version,
                "config_document": document[0],
                "config_version": document[1],
            },
        )
    )
