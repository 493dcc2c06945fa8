"""The operator API (DESIGN §6): a Powertools REST resolver with one Router per concern.

Routes: ``GET /groups`` (``?status=all`` or one status; default the open groups), ``GET /groups/{id}``,
``POST /groups/{id}/{block|unblock|skip|close}``, ``GET /queue``, ``POST /queue/{id}/promote``,
``DELETE /queue/{id}``, ``GET /pool``, ``GET /risk``, ``POST /risk/run``, ``GET /equity``
(``?since=<ISO time>``). IAM authorisation is API Gateway's job. The resolver matches on the event's
``path``, which never carries the stage prefix.

Errors map to HTTP here and only here (:func:`_service_error` and friends), always as
``{"error": code, "reason": text}``: :class:`NotFound` → 404 ``not_found``, :class:`InvalidState` →
409 ``invalid_state``, :class:`PoolFull` → 409 ``pool_full``, :class:`EntryRefused` (a promoted entry
now fails its pre-trade checks) → 409 ``refused``, a write that kept losing to other writers → 409
``conflict``, a bad query value → 400 ``bad_request``, an unknown route → 404 ``not_found``.

Repeats are no-ops answered 200 with ``"changed": false``: block/unblock/skip/close of a group already
so; promote or delete of a queue entry the operator already promoted/removed (remembered in the state
table, ``operator/queue/<id>``). A queue id never seen by the operator and not queued is 404.
"""

from __future__ import annotations

from datetime import datetime
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import BadRequestError
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound
from aws_lambda_powertools.event_handler.exceptions import ServiceError as HttpError

from engine.app.context import stores
from engine.app.intake import EntryRefused
from engine.app.pool import promote_entry
from engine.app.risk import ControlResult, close_group, risk_status, run_risk, set_blocked, skip_once
from engine.app.shared.errors import InvalidState, NotFound, PoolFull, ServiceError
from engine.app.shared.views import equity_view, group_view, iso, order_view, pyramid_view, queue_view
from engine.config import load_config
from engine.domain.models import OPEN_GROUP_STATUSES, GroupStatus, utcnow
from engine.domain.queue import promotion_order
from engine.store import StaleWrite

logger = Logger(child=True)

#: HTTP status of each service error.
SERVICE_ERROR_STATUS: dict[type[ServiceError], HTTPStatus] = {
    NotFound: HTTPStatus.NOT_FOUND,
    InvalidState: HTTPStatus.CONFLICT,
    PoolFull: HTTPStatus.CONFLICT,
}
QUEUE_MEMORY_PREFIX = "operator/queue/"

groups_router = Router()
queue_router = Router()
risk_router = Router()
account_router = Router()


def _now() -> datetime:
    return utcnow()


def _parse_time(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise BadRequestError(f"{name}: not an ISO-8601 time: {value!r}") from error
    if parsed.tzinfo is None:
        raise BadRequestError(f"{name}: needs a timezone (e.g. Z): {value!r}")
    return parsed


def _control_reply(result: ControlResult) -> dict[str, Any]:
    return {"group": group_view(result.group), "changed": result.changed}


# -- groups ------------------------------------------------------------------------------------------


@groups_router.get("/groups")
def list_groups() -> dict[str, Any]:
    """Open groups; ``?status=all`` every group, ``?status=<status>`` those in one status."""
    wanted = groups_router.current_event.get_query_string_value("status", "open") or "open"
    if wanted == "open":
        statuses = set(OPEN_GROUP_STATUSES)
    elif wanted == "all":
        statuses = set(GroupStatus)
    else:
        try:
            statuses = {GroupStatus(wanted)}
        except ValueError as error:
            allowed = ", ".join(["open", "all", *(s.value for s in GroupStatus)])
            raise BadRequestError(f"status: {wanted!r} is not one of {allowed}") from error
    groups = stores().groups.list_by_status(sorted(statuses))
    groups.sort(key=lambda group: (group.created_at, group.id))
    return {"groups": [group_view(group) for group in groups]}


@groups_router.get("/groups/<group_id>")
def get_group(group_id: str) -> dict[str, Any]:
    """One group with its pyramids and every order."""
    the_stores = stores()
    group = the_stores.groups.get(group_id)
    if group is None:
        raise NotFound(f"no group {group_id}")
    orders = the_stores.orders.list_for_group(group_id)
    return {
        "group": group_view(group),
        "pyramids": [pyramid_view(pyramid) for pyramid in group.pyramids],
        "orders": [order_view(order) for order in orders],
    }


@groups_router.post("/groups/<group_id>/block")
def block_group(group_id: str) -> dict[str, Any]:
    """Exclude the group from the risk engine (neither loser nor winner)."""
    return _control_reply(set_blocked(stores(), group_id, True, _now()))


@groups_router.post("/groups/<group_id>/unblock")
def unblock_group(group_id: str) -> dict[str, Any]:
    """Let the risk engine consider the group again."""
    return _control_reply(set_blocked(stores(), group_id, False, _now()))


@groups_router.post("/groups/<group_id>/skip")
def skip_group(group_id: str) -> dict[str, Any]:
    """Skip the group once as the risk engine's loser."""
    return _control_reply(skip_once(stores(), group_id, _now()))


@groups_router.post("/groups/<group_id>/close")
def close_group_route(group_id: str) -> dict[str, Any]:
    """Close the group in full at market (reason "operator close")."""
    return _control_reply(close_group(stores(), group_id, _now()))


# -- queue -------------------------------------------------------------------------------------------


@queue_router.get("/queue")
def list_queue() -> dict[str, Any]:
    """Queued entries in promotion order, ranked from 1."""
    the_stores = stores()
    entries = the_stores.queue.list_all()
    prices = {}
    for market in {(entry.exchange, entry.symbol) for entry in entries}:
        price = the_stores.prices.get(*market)
        if price is not None:
            prices[market] = price
    ordered = promotion_order(entries, load_config().queue.rules, prices)
    return {"queue": [queue_view(entry, rank) for rank, entry in enumerate(ordered, start=1)]}


def _remembered(entry_id: str) -> dict[str, Any] | None:
    return stores().state.get(QUEUE_MEMORY_PREFIX + entry_id)


@queue_router.post("/queue/<entry_id>/promote")
def promote(entry_id: str) -> dict[str, Any]:
    """Promote a queued entry into a free slot now: its group and orders are created (orders placed)."""
    the_stores = stores()
    now = _now()
    try:
        group = promote_entry(the_stores, entry_id, load_config(), now)
    except NotFound:
        memory = _remembered(entry_id)
        if memory is None or memory.get("action") != "promoted":
            raise
        existing = the_stores.groups.get(str(memory["group_id"]))
        return {"group": group_view(existing) if existing is not None else None, "changed": False}
    the_stores.state.put(
        QUEUE_MEMORY_PREFIX + entry_id, {"action": "promoted", "group_id": group.id, "at": iso(now)}
    )
    orders = the_stores.orders.list_for_group(group.id)
    return {"group": group_view(group), "orders": [order_view(o) for o in orders], "changed": True}


@queue_router.delete("/queue/<entry_id>")
def remove_queued(entry_id: str) -> dict[str, Any]:
    """Remove a queued entry (it will not be promoted)."""
    the_stores = stores()
    if the_stores.queue.remove(entry_id):
        now = _now()
        the_stores.state.put(QUEUE_MEMORY_PREFIX + entry_id, {"action": "removed", "at": iso(now)})
        return {"removed": entry_id, "changed": True}
    memory = _remembered(entry_id)
    if memory is not None and memory.get("action") == "removed":
        return {"removed": entry_id, "changed": False}
    raise NotFound(f"no queued entry {entry_id}")


# -- risk --------------------------------------------------------------------------------------------


@risk_router.get("/risk")
def get_risk() -> dict[str, Any]:
    """Timers, the loser and winners the next run would pick, its plan and the recent actions."""
    return risk_status(stores(), _now())


@risk_router.post("/risk/run")
def run_risk_now() -> dict[str, Any]:
    """Run the risk engine now, ignoring its interval."""
    return run_risk(stores(), _now(), force=True).as_dict()


# -- pool and equity -----------------------------------------------------------------------------------


@account_router.get("/pool")
def get_pool() -> dict[str, Any]:
    """Pool size, groups holding a slot and free slots."""
    count, slots = stores().pool.status()
    maximum = load_config().pool.max_open_groups
    return {"max_open_groups": maximum, "open": count, "free": max(maximum - count, 0), "groups": slots}


@account_router.get("/equity")
def get_equity() -> dict[str, Any]:
    """The equity curve, oldest first (``?since=`` limits it)."""
    since_text = account_router.current_event.get_query_string_value("since", "")
    since = _parse_time(since_text, "since") if since_text else None
    return {"points": [equity_view(point) for point in stores().equity.list(since)]}


# -- the resolver and its error mapping (the one place errors become HTTP) -------------------------


def _error(status: int, code: str, reason: str) -> Response:
    return Response(status, content_types.APPLICATION_JSON, {"error": code, "reason": reason})


app = APIGatewayRestResolver()
app.include_router(groups_router)
app.include_router(queue_router)
app.include_router(risk_router)
app.include_router(account_router)


@app.exception_handler(ServiceError)
def _service_error(error: ServiceError) -> Response:
    status = next(
        (code for kind, code in SERVICE_ERROR_STATUS.items() if isinstance(error, kind)),
        HTTPStatus.CONFLICT,
    )
    return _error(status, error.code, str(error))


@app.exception_handler(EntryRefused)
def _entry_refused(error: EntryRefused) -> Response:
    return _error(HTTPStatus.CONFLICT, "refused", str(getattr(error, "reason", error)))


@app.exception_handler(StaleWrite)
def _conflict(error: StaleWrite) -> Response:
    return _error(HTTPStatus.CONFLICT, "conflict", f"{error}; try again")


@app.exception_handler(RouteNotFound)
def _no_route(_: RouteNotFound) -> Response:
    event = app.current_event
    return _error(HTTPStatus.NOT_FOUND, "not_found", f"no route {event.http_method} {event.path}")


@app.exception_handler(HttpError)
def _http_error(error: HttpError) -> Response:
    code = (
        "bad_request" if error.status_code == HTTPStatus.BAD_REQUEST else HTTPStatus(error.status_code).phrase
    )
    return _error(error.status_code, code.lower().replace(" ", "_"), str(error.msg))
