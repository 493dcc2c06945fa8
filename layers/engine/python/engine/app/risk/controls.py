"""Manual risk controls (DESIGN §3.8, §6): block / unblock, skip once, close a group.

Each control is idempotent: doing what is already so changes nothing and reports ``changed=False``.
Unknown group → :class:`NotFound`; a control the group's state forbids → :class:`InvalidState`:

- block / unblock / skip once on a ``closed`` or ``failed`` group (the risk engine no longer sees it;
  unblocking a terminal group that is not blocked is a no-op, not an error);
- close on a ``closed`` or ``failed`` group. Closing a group that is already ``closing`` is a repeat.

Every change is recorded in ``risk_actions`` (action ``block``, ``unblock``, ``skip_once``,
``operator_close``) with the ``risk`` config version.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from engine.app.context import EngineContext, Stores
from engine.app.positions import request_close
from engine.app.shared.errors import InvalidState, NotFound
from engine.app.shared.retry import retry_on_stale
from engine.domain.models import TERMINAL_GROUP_STATUSES, CloseReason, Group, GroupStatus
from engine.store import RiskActionRecord, StaleWrite

SAVE_ATTEMPTS = 5
OPERATOR_CLOSE_REASON = "operator close"


@dataclass(frozen=True)
class ControlResult:
    """The group after a control, and whether the control changed anything."""

    group: Group
    changed: bool


def update_group(
    stores: Stores, group_id: str, change: Callable[[Group], bool], now: datetime
) -> tuple[Group | None, bool]:
    """Re-read ``group_id``, apply ``change`` (True = it changed the group) and save (stamped ``now``),
    retrying on conflicts. ``(None, False)`` when the group does not exist."""

    def attempt() -> tuple[Group | None, bool]:
        group = stores.groups.get(group_id)
        if group is None:
            return None, False
        if not change(group):
            return group, False
        stores.groups.save(group, now=now)
        return group, True

    return retry_on_stale(
        attempt,
        attempts=SAVE_ATTEMPTS,
        on_exhausted=lambda: StaleWrite(f"group {group_id} kept changing; control not applied"),
    )


def clear_skip_once(stores: Stores, group_id: str, now: datetime) -> bool:
    """Clear a honoured skip-once flag; False when it was not set (or the group is gone)."""

    def clear(group: Group) -> bool:
        if not group.risk_skip_once:
            return False
        group.risk_skip_once = False
        return True

    return update_group(stores, group_id, clear, now)[1]


def _existing(stores: Stores, group_id: str) -> Group:
    group = stores.groups.get(group_id)
    if group is None:
        raise NotFound(f"no group {group_id}")
    return group


def _record(ctx: EngineContext, group: Group, action: str, reason: str, now: datetime) -> None:
    ctx.stores.risk_actions.record(
        RiskActionRecord(
            id=f"op{uuid.uuid4().hex}",
            at=now,
            action=action,
            reason=reason,
            group_id=group.id,
            details={
                "config_version": ctx.config.snapshot().versions.get("risk", 0),
                "by": "operator",
                "account": group.account,
            },
        )
    )


def _set_flag(
    ctx: EngineContext, group_id: str, flag: str, value: bool, action: str, now: datetime
) -> ControlResult:
    stores = ctx.stores
    current = _existing(stores, group_id)
    if getattr(current, flag) == value:
        return ControlResult(current, False)
    if current.status in TERMINAL_GROUP_STATUSES:
        raise InvalidState(f"group {group_id} is {current.status.value}: {action} does not apply")

    def change(group: Group) -> bool:
        if getattr(group, flag) == value:
            return False
        if group.status in TERMINAL_GROUP_STATUSES:
            raise InvalidState(f"group {group_id} is {group.status.value}: {action} does not apply")
        setattr(group, flag, value)
        return True

    group, changed = update_group(stores, group_id, change, now)
    if group is None:
        raise NotFound(f"no group {group_id}")
    if changed:
        _record(ctx, group, action, f"operator: {action}", now)
    return ControlResult(group, changed)


def set_blocked(ctx: EngineContext, group_id: str, blocked: bool, now: datetime) -> ControlResult:
    """Block (``True``) or unblock a group: a blocked group is never a loser nor a winner."""
    return _set_flag(ctx, group_id, "risk_blocked", blocked, "block" if blocked else "unblock", now)


def skip_once(ctx: EngineContext, group_id: str, now: datetime) -> ControlResult:
    """Skip the group as the loser in the next risk run that would pick it (cleared once honoured)."""
    return _set_flag(ctx, group_id, "risk_skip_once", True, "skip_once", now)


def close_group(ctx: EngineContext, group_id: str, now: datetime) -> ControlResult:
    """Close the group in full at market (``close_reason`` ``operator``, close order purpose ``exit``)."""
    stores = ctx.stores
    group = _existing(stores, group_id)
    if group.status in TERMINAL_GROUP_STATUSES:
        raise InvalidState(f"group {group_id} is already {group.status.value}")
    if group.status == GroupStatus.CLOSING:
        return ControlResult(group, False)
    changed = request_close(ctx, group_id, reason=CloseReason.OPERATOR, note=OPERATOR_CLOSE_REASON, now=now)
    after = _existing(stores, group_id)
    if changed:
        _record(ctx, after, "operator_close", OPERATOR_CLOSE_REASON, now)
    elif after.status in TERMINAL_GROUP_STATUSES:
        raise InvalidState(f"group {group_id} is already {after.status.value}")
    return ControlResult(after, changed)
