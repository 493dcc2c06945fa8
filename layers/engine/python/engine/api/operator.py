"""The operator API (DESIGN §6): a Powertools REST resolver with one Router per concern.

Routes: ``GET /groups`` (``?status=all`` or one status; default the open groups; ``?account=`` on
``/groups``, ``/queue``, ``/pool``, ``/risk``, ``/equity`` and ``/events`` keeps one account's),
``GET /groups/{id}``, ``POST /groups/{id}/{block|unblock|skip|close}``, ``GET /queue``,
``POST /queue/{id}/promote``, ``DELETE /queue/{id}``, ``GET /pool``, ``GET /risk``, ``POST /risk/run``,
``GET /equity`` (``?since=<ISO time>``), ``GET /events`` (``?group_id=&since=&kind=&account=&limit=``),
``GET /engine``, ``POST /engine/{pause|resume}``, ``GET /analytics``
(``?period=&account=``), ``GET /groups?status=closed&format=csv``; and the console page (``GET /``,
``GET /console/<file>``, :mod:`engine.api.console`), the one part API Gateway serves without sign-in.
Authorisation is API Gateway's job. Route functions parse the request and make one call into
``engine.app`` (``operator``, ``risk``) with the engine context. The resolver matches on the event's
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

from engine.api.console import console_router
from engine.app.context import EngineContext, engine_context
from engine.app.intake import EntryRefused
from engine.app.operator import (
    PERIODS,
    analytics_report,
    closed_groups_csv,
    config_documents,
    engine_status,
    equity_points,
    event_log,
    group_detail,
    groups_in,
    pool_status,
    promote_queued,
    ranked_queue,
    recent_signals,
    remove_queued,
    set_paused,
)
from engine.app.risk import ControlResult, close_group, risk_status, run_risk, set_blocked, skip_once
from engine.app.shared.errors import InvalidState, NotFound, PoolFull, ServiceError
from engine.app.shared.views import group_view
from engine.domain.models import OPEN_GROUP_STATUSES, GroupStatus
from engine.store import StaleWrite

logger = Logger(child=True)

#: HTTP status of each service error.
SERVICE_ERROR_STATUS: dict[type[ServiceError], HTTPStatus] = {
    NotFound: HTTPStatus.NOT_FOUND,
    InvalidState: HTTPStatus.CONFLICT,
    PoolFull: HTTPStatus.CONFLICT,
}

groups_router = Router()
queue_router = Router()
risk_router = Router()
account_router = Router()
engine_router = Router()


def _ctx() -> EngineContext:
    return engine_context()


def _parse_time(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise BadRequestError(f"{name}: not an ISO-8601 time: {value!r}") from error
    if parsed.tzinfo is None:
        raise BadRequestError(f"{name}: needs a timezone (e.g. Z): {value!r}")
    return parsed


def _statuses(wanted: str) -> set[GroupStatus]:
    if wanted == "open":
        return set(OPEN_GROUP_STATUSES)
    if wanted == "all":
        return set(GroupStatus)
    try:
        return {GroupStatus(wanted)}
    except ValueError as error:
        allowed = ", ".join(["open", "all", *(s.value for s in GroupStatus)])
        raise BadRequestError(f"status: {wanted!r} is not one of {allowed}") from error


def _control_reply(result: ControlResult) -> dict[str, Any]:
    return {"group": group_view(result.group), "changed": result.changed}


# -- groups ------------------------------------------------------------------------------------------


@groups_router.get("/groups")
def list_groups() -> dict[str, Any] | Response:
    """Open groups; ``?status=all`` every group, ``?status=<status>`` those in one status.

    ``?status=closed&format=csv`` exports the closed groups as CSV (``&account=`` narrows it)."""
    event = groups_router.current_event
    wanted = event.get_query_string_value("status", "open") or "open"
    output = event.get_query_string_value("format", "json") or "json"
    if output == "csv":
        if wanted != "closed":
            raise BadRequestError("format=csv exports closed groups: use status=closed")
        body = closed_groups_csv(_ctx(), event.get_query_string_value("account", "") or None)
        return Response(
            HTTPStatus.OK,
            "text/csv; charset=utf-8",
            body,
            headers={"Content-Disposition": 'attachment; filename="closed-groups.csv"'},
        )
    if output != "json":
        raise BadRequestError(f"format: {output!r} is not one of json, csv")
    account = (event.get_query_string_value("account", "") or "").strip().lower()
    return groups_in(_ctx(), _statuses(wanted), account or None)


@groups_router.get("/groups/<group_id>")
def get_group(group_id: str) -> dict[str, Any]:
    """One group with its pyramids and every order."""
    return group_detail(_ctx(), group_id)


@groups_router.post("/groups/<group_id>/block")
def block_group(group_id: str) -> dict[str, Any]:
    """Exclude the group from the risk engine (neither loser nor winner)."""
    ctx = _ctx()
    return _control_reply(set_blocked(ctx, group_id, True, ctx.now()))


@groups_router.post("/groups/<group_id>/unblock")
def unblock_group(group_id: str) -> dict[str, Any]:
    """Let the risk engine consider the group again."""
    ctx = _ctx()
    return _control_reply(set_blocked(ctx, group_id, False, ctx.now()))


@groups_router.post("/groups/<group_id>/skip")
def skip_group(group_id: str) -> dict[str, Any]:
    """Skip the group once as the risk engine's loser."""
    ctx = _ctx()
    return _control_reply(skip_once(ctx, group_id, ctx.now()))


@groups_router.post("/groups/<group_id>/close")
def close_group_route(group_id: str) -> dict[str, Any]:
    """Close the group in full at market (close reason ``operator``)."""
    ctx = _ctx()
    return _control_reply(close_group(ctx, group_id, ctx.now()))


# -- queue -------------------------------------------------------------------------------------------


@queue_router.get("/queue")
def list_queue() -> dict[str, Any]:
    """Queued entries in promotion order, ranked from 1 (``?account=`` one account's)."""
    account = (queue_router.current_event.get_query_string_value("account", "") or "").strip().lower()
    return ranked_queue(_ctx(), account or None)


@queue_router.post("/queue/<entry_id>/promote")
def promote(entry_id: str) -> dict[str, Any]:
    """Promote a queued entry into a free slot now: its group and orders are created (orders placed)."""
    ctx = _ctx()
    return promote_queued(ctx, entry_id, ctx.now())


@queue_router.delete("/queue/<entry_id>")
def remove_from_queue(entry_id: str) -> dict[str, Any]:
    """Remove a queued entry (it will not be promoted)."""
    ctx = _ctx()
    return remove_queued(ctx, entry_id, ctx.now())


# -- risk --------------------------------------------------------------------------------------------


@risk_router.get("/risk")
def get_risk() -> dict[str, Any]:
    """Timers, the loser and winners the next run would pick, its plan and the recent actions (each
    account has its own plan; ``?account=`` one account's)."""
    ctx = _ctx()
    account = (risk_router.current_event.get_query_string_value("account", "") or "").strip().lower()
    return risk_status(ctx, ctx.now(), account or None)


@risk_router.post("/risk/run")
def run_risk_now() -> dict[str, Any]:
    """Run the risk engine now, ignoring its interval."""
    ctx = _ctx()
    return run_risk(ctx, ctx.now(), force=True).as_dict()


# -- pool and equity -----------------------------------------------------------------------------------


def _account() -> str | None:
    """The ``?account=`` filter (lower case), None when absent."""
    value = account_router.current_event.get_query_string_value("account", "") or ""
    return value.strip().lower() or None


@account_router.get("/pool")
def get_pool() -> dict[str, Any]:
    """Totals of every account's pool (size, groups holding a slot, free) and ``accounts`` by name;
    ``?account=`` one account's."""
    return pool_status(_ctx(), _account())


@account_router.get("/equity")
def get_equity() -> dict[str, Any]:
    """The equity curve, oldest first (``?since=`` limits it; ``?account=`` one account's own curve)."""
    since_text = account_router.current_event.get_query_string_value("since", "")
    since = _parse_time(since_text, "since") if since_text else None
    return equity_points(_ctx(), since, _account())


# -- engine control and analytics ---------------------------------------------------------------------


def _note() -> str | None:
    try:
        body = engine_router.current_event.json_body if engine_router.current_event.body else None
    except ValueError as error:
        raise BadRequestError(f"body is not JSON: {error}") from error
    note = body.get("note") if isinstance(body, dict) else None
    return None if note is None else str(note)[:200]


def available_routes() -> list[str]:
    """``"METHOD /path"`` of every route this API serves (the console asks before it calls an optional
    one, so a route another version lacks is never a 404 in the browser)."""
    routes = [*getattr(app, "_static_routes", []), *getattr(app, "_dynamic_routes", [])]
    return sorted({f"{route.method} {route.openapi_path}" for route in routes})


@engine_router.get("/engine")
def get_engine() -> dict[str, Any]:
    """Whether new entries are paused, and by whom (the ``engine`` document or the operator); and the
    routes this API serves (``routes``)."""
    return {**engine_status(_ctx()), "routes": available_routes()}


@engine_router.post("/engine/pause")
def pause_engine() -> dict[str, Any]:
    """Pause new entries and pyramids (an operator control item; exits, TPs and risk keep working)."""
    ctx = _ctx()
    return set_paused(ctx, True, ctx.now(), _note())


@engine_router.post("/engine/resume")
def resume_engine() -> dict[str, Any]:
    """Clear the operator's pause (a pause in the ``engine`` document stays)."""
    ctx = _ctx()
    return set_paused(ctx, False, ctx.now(), _note())


@engine_router.get("/analytics")
def get_analytics() -> dict[str, Any]:
    """Performance over closed groups: ``?period=day|week|month|all`` (default all), ``&account=``."""
    event = engine_router.current_event
    period = event.get_query_string_value("period", "all") or "all"
    if period not in PERIODS:
        raise BadRequestError(f"period: {period!r} is not one of {', '.join(PERIODS)}")
    account = event.get_query_string_value("account", "") or None
    ctx = _ctx()
    return analytics_report(ctx, period, account, ctx.now())


@engine_router.get("/config")
def get_config() -> dict[str, Any]:
    """The live configuration documents (read-only) with their versions and any problem."""
    return config_documents(_ctx())


@engine_router.get("/signals")
def get_signals() -> dict[str, Any]:
    """Recent signal outcomes, newest first (``?limit=`` 1-200, ``&outcome=``, ``&group_id=``)."""
    event = engine_router.current_event
    text = event.get_query_string_value("limit", "50") or "50"
    if not text.isdigit() or not 1 <= int(text) <= 200:
        raise BadRequestError(f"limit: {text!r} is not a number from 1 to 200")
    return recent_signals(
        _ctx(),
        int(text),
        outcome=event.get_query_string_value("outcome", "") or None,
        group_id=event.get_query_string_value("group_id", "") or None,
    )


# -- the event log ------------------------------------------------------------------------------------


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError as error:
        raise BadRequestError(f"limit: not a whole number: {text!r}") from error
    if value < 1:
        raise BadRequestError(f"limit: must be at least 1, got {value}")
    return value


@account_router.get("/events")
def get_events() -> dict[str, Any]:
    """The event log, newest first: ``?group_id=`` one group's, else ``?since=`` (ISO time, default 30
    days back); ``?kind=``, ``?account=`` filter; ``?limit=`` (default 100, at most 500)."""
    query = account_router.current_event.get_query_string_value
    since_text = query("since", "") or ""
    return event_log(
        _ctx(),
        group_id=query("group_id", "") or None,
        since=_parse_time(since_text, "since") if since_text else None,
        kind=query("kind", "") or None,
        account=(query("account", "") or "").strip().lower() or None,
        limit=_limit(query("limit", "") or "100"),
    )


# -- the resolver and its error mapping (the one place errors become HTTP) -------------------------


def _error(status: int, code: str, reason: str) -> Response:
    return Response(status, content_types.APPLICATION_JSON, {"error": code, "reason": reason})


app = APIGatewayRestResolver()
app.include_router(groups_router)
app.include_router(queue_router)
app.include_router(risk_router)
app.include_router(account_router)
app.include_router(engine_router)
app.include_router(console_router)


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
