"""Fake PagerDuty REST API v2 under /pagerduty: schedules, escalation policies and users."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from litestar import Request, Response, Router, get
from litestar.datastructures import State
from litestar.params import FromPath

from snapshots.simulator import pagerduty_data as pd
from snapshots.simulator.state import Sizes
from snapshots.simulator.upstream import Answer, Dialect, Shape, serve, simulator_state

DEFAULT_LIMIT = 25
MAX_LIMIT = 100


def _error(status: int, message: str, code: int, errors: list[str] | None = None) -> Answer:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return Answer(status, {"error": body})


NOT_FOUND = _error(404, "Not Found", 2100)


class PagerDutyDialect(Dialect):
    """`Authorization: Token token=...`; errors as `{"error": {"message", "code"}}`."""

    name = "pagerduty"

    def authorized(self, request: Request[Any, Any, State], token: str) -> bool:
        return request.headers.get("authorization") == f"Token token={token}"

    def unauthorized(self) -> Answer:
        return _error(401, "Invalid Credentials", 2006)

    def error(self, status: int) -> Answer:
        return _error(status, HTTPStatus(status).phrase, 2000)

    def throttled(self, limit: int, reset_seconds: int, retry_after: str | None) -> Answer:
        headers = {
            "ratelimit-limit": str(limit),
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(reset_seconds),
        }
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        return _error(429, "Rate Limit Exceeded", 2020).with_headers(headers)


DIALECT = PagerDutyDialect()


def _schedule_number(request: Request[Any, Any, State]) -> Callable[[str], int | None]:
    """`schedule_number` for as many schedules as the simulator is sized to."""
    count = simulator_state(request).sizes.schedules
    return lambda object_id: pd.schedule_number(object_id, count)


@get("/schedules/{schedule_id:str}/users")
async def schedule_users(
    request: Request[Any, Any, State], schedule_id: FromPath[str]
) -> Response[bytes]:
    """GET /schedules/{id}/users: the users on call in the schedule's window (not paged; under
    an `overstated` fault it answers as a classic page that says `more: true`)."""
    return await _object(
        request, schedule_id, _schedule_number(request), "users", pd.on_call_users, [], paged=True
    )


@get("/schedules/{schedule_id:str}")
async def schedule(
    request: Request[Any, Any, State], schedule_id: FromPath[str]
) -> Response[bytes]:
    """GET /schedules/{id}?since=&until=: the schedule object with its final layer rendered
    over the window (an empty object under an `empty` fault)."""
    now = datetime.now(UTC).replace(microsecond=0)
    since = request.query_params.get("since") or now.isoformat()
    until = request.query_params.get("until") or (now + timedelta(days=14)).isoformat()
    return await _object(
        request,
        schedule_id,
        _schedule_number(request),
        "schedule",
        lambda n, rotation: pd.schedule(n, rotation, since, until),
        {},
    )


@get("/users/{user_id:str}")
async def user(request: Request[Any, Any, State], user_id: FromPath[str]) -> Response[bytes]:
    """GET /users/{id}: one user (404 for ids that do not exist, deleted users among them)."""
    return await _object(request, user_id, pd.user_number, "user", lambda n, _: pd.user(n), {})


@get("/escalation_policies/{policy_id:str}")
async def escalation_policy(
    request: Request[Any, Any, State], policy_id: FromPath[str]
) -> Response[bytes]:
    """GET /escalation_policies/{id}: levels of schedules and users to page."""
    return await _object(
        request, policy_id, pd.policy_number, "escalation_policy", pd.escalation_policy, {}
    )


async def _object(
    request: Request[Any, Any, State],
    object_id: str,
    number_of: Callable[[str], int | None],
    wrapper: str,
    build: Callable[[int, int], Any],
    empty_value: Any,
    paged: bool = False,
) -> Response[bytes]:
    """One object in PagerDuty's entity wrapper, or 404; `empty_value` under an `empty` fault
    (and, when `paged`, a `truncated` one)."""
    mutation = simulator_state(request).mutation("pagerduty", object_id)

    def answer(shape: Shape) -> Answer:
        n = number_of(object_id)
        if shape == "empty" or (paged and shape == "truncated"):
            return Answer(200, {wrapper: empty_value})
        if n is None:
            return NOT_FOUND
        value = build(n, mutation)
        if paged and shape == "overstated":
            page = {"limit": len(value), "offset": 0, "more": True, "total": None}
            return Answer(200, {wrapper: value, **page})
        return Answer(200, {wrapper: value})

    return await serve(request, DIALECT, answer)


def _page_params(request: Request[Any, Any, State]) -> tuple[int, int] | Answer:
    """(offset, limit) from the query, or PagerDuty's 400 when they are not numbers."""
    try:
        offset = int(request.query_params.get("offset", "0"))
        limit = int(request.query_params.get("limit", str(DEFAULT_LIMIT)))
    except ValueError:
        return _error(400, "Invalid Input Provided", 2001, ["Offset and limit must be integers."])
    if offset < 0 or limit < 1:
        return _error(400, "Invalid Input Provided", 2001, ["Offset must be >= 0, limit >= 1."])
    return offset, min(limit, MAX_LIMIT)


@get("/users")
async def users(request: Request[Any, Any, State]) -> Response[bytes]:
    """GET /users?offset=&limit=: every user, with classic offset pagination."""
    params = _page_params(request)
    total = request.query_params.get("total") == "true"

    def answer(shape: Shape) -> Answer:
        if isinstance(params, Answer):
            return params
        page = pd.users_page(*params, total=total)
        if shape == "empty":
            page.update(users=[], more=False)
        elif shape == "truncated":  # `more` and `total` stay as they were
            page.update(users=[])
        elif shape == "overstated":
            page.update(more=True)
            if page["total"] is not None:
                page.update(total=page["total"] + page["limit"])
        return Answer(200, page)

    return await serve(request, DIALECT, answer)


router = Router(
    "/pagerduty", route_handlers=[schedule_users, schedule, escalation_policy, users, user]
)


def object_exists(object_id: str, sizes: Sizes) -> bool:
    """Whether `object_id` is a schedule or escalation policy that can be mutated."""
    return (
        pd.schedule_number(object_id, sizes.schedules) is not None
        or pd.policy_number(object_id) is not None
    )
