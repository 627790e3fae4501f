"""PagerDuty's REST API v2 shapes under `/mirror/<instance>`, from snapshots: what the `pagerduty`
library (and pypd, pdpyras) reads, so an integration changes only its base URL and token.

Paths: `/schedules/{id}/users` (the `schedule_users` snapshot: users on call from now to one TTL
ahead, whatever `since`/`until` ask), `/schedules/{id}` (`schedule`), `/escalation_policies/{id}`
(`escalation_policy`), `/users/{id}` (`user`), and `/users` with classic pagination (`limit`,
`offset`, `more`, `total`) over the `users` snapshot of the whole list.
"""

from __future__ import annotations

from typing import Any

from snapshots.providers.kind import Mirror, MirrorAnswer, MirrorRequest, MirrorRoute

ID = r"(?P<id>[^/]+)"
DEFAULT_LIMIT = 25
MAX_LIMIT = 100
_CODES = {400: 2001, 401: 2006, 403: 2010, 404: 2100, 429: 2020}


class BadPage(ValueError):
    """`offset` / `limit` that PagerDuty would refuse."""


def token(authorization: str) -> str | None:
    """`Token token=<token>` (the REST API key scheme) or `Bearer <token>` (OAuth)."""
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme == "Token" and rest.startswith("token="):
        return rest.removeprefix("token=").strip() or None
    if scheme.lower() == "bearer":
        return rest.strip() or None
    return None


def error(status: int, message: str) -> Any:
    """PagerDuty's error body: `{"error": {"message", "code"}}`."""
    return {"error": {"message": message, "code": _CODES.get(status, 2000)}}


def _wrapped(dataset: str, wrapper: str) -> Any:
    async def answer(request: MirrorRequest) -> MirrorAnswer:
        return MirrorAnswer({wrapper: await request.read(dataset, request.params["id"])})

    return answer


def _integer(value: str) -> int:
    """An integer in ASCII digits, as PagerDuty reads one (`int` also takes "1_0", spaces and
    other scripts' digits)."""
    digits = value.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 30:
        raise BadPage("Offset and limit must be integers.")
    return int(value)


def _page(query: Any) -> tuple[int, int]:
    offset = _integer(query.get("offset", "0"))
    limit = _integer(query.get("limit", str(DEFAULT_LIMIT)))
    if offset < 0 or limit < 1:
        raise BadPage("Offset must be >= 0, limit >= 1.")
    return offset, min(limit, MAX_LIMIT)


async def _users(request: MirrorRequest) -> MirrorAnswer:
    """GET /users: one page of the whole-list snapshot, with PagerDuty's classic pagination."""
    try:
        offset, limit = _page(request.query)
    except BadPage as exc:
        refusal = {"message": "Invalid Input Provided", "code": 2001, "errors": [str(exc)]}
        return MirrorAnswer({"error": refusal}, status=400)
    users = await request.read("users", "all")
    total = len(users) if request.query.get("total") == "true" else None
    page = users[offset : offset + limit]
    body: dict[str, Any] = {
        "users": page,
        "offset": offset,
        "limit": limit,
        "more": offset + limit < len(users),
        "total": total,
    }
    return MirrorAnswer(body)


MIRROR = Mirror(
    routes=(
        MirrorRoute(
            rf"/schedules/{ID}/users", "/schedules/{id}/users", _wrapped("schedule_users", "users")
        ),
        MirrorRoute(rf"/schedules/{ID}", "/schedules/{id}", _wrapped("schedule", "schedule")),
        MirrorRoute(
            rf"/escalation_policies/{ID}",
            "/escalation_policies/{id}",
            _wrapped("escalation_policy", "escalation_policy"),
        ),
        MirrorRoute(r"/users", "/users", _users),
        MirrorRoute(rf"/users/{ID}", "/users/{id}", _wrapped("user", "user")),
    ),
    token=token,
    error=error,
)
