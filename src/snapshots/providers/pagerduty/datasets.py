"""PagerDuty's datasets: users on call in a schedule (over a TTL, or now), escalation policies,
users by id."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
import pagerduty

from snapshots.errors import UpstreamError
from snapshots.providers import mirror_any
from snapshots.providers.fetching import MAX_PAGES, incomplete, raise_for_status, transport_failure
from snapshots.providers.kind import DatasetDefinition, FetchContext, JSONValue, KeyFormat

PAGERDUTY_ID = KeyFormat(
    pattern=r"P[A-Z0-9]{5,13}",
    description="a PagerDuty object id (P followed by 5-13 upper-case letters or digits)",
    example="PABC123",
)


class User(msgspec.Struct):
    """What a stored schedule user must have (the rest of the object is kept as sent)."""

    id: str


class OnCallReference(msgspec.Struct):
    """A user reference of a schedule's final layer (the user object is in the `user` dataset)."""

    id: str


class Identified(msgspec.Struct):
    """An object the mirror serves as stored: it must carry its id."""

    id: str


class UserRecord(msgspec.Struct):
    """What a stored user must have: the id it was asked by and an email."""

    id: str
    email: str


ON_CALL_WINDOW_SECONDS = 60.0
"""`schedule_on_call` renders the final layer over now..now+60 s, as qontract-api does."""


class EscalationTarget(msgspec.Struct):
    """A rule's target: a schedule or user reference (its id is what gets read next)."""

    id: str
    type: str


class EscalationRule(msgspec.Struct):
    escalation_delay_in_minutes: int
    targets: list[EscalationTarget]


class EscalationPolicy(msgspec.Struct):
    """What a stored policy must have: rules whose targets carry a type and an id, and a delay
    (a policy missing them is refused at refresh, never walked half-understood)."""

    id: str
    escalation_rules: list[EscalationRule] = []


def _get(client: Any, path: str, what: str, params: dict[str, str] | None = None) -> Any:
    """GET a PagerDuty path and decode JSON, turning every failure into a safe, actionable error."""
    try:
        response = client.get(path, params=params)
    except pagerduty.Error as exc:
        # The library's messages can carry a truncated token; never pass them on.
        response = getattr(exc, "response", None)
        if response is None:
            raise transport_failure("pagerduty", what, exc) from None
    raise_for_status("pagerduty", response.status_code, what)
    try:
        return response.json()
    except ValueError:
        raise UpstreamError(f"pagerduty sent malformed JSON for {what}") from None


def fetch_schedule_users(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """Users on call in schedule `key` from now until one TTL ahead (GET /schedules/{id}/users)."""
    since = ctx.now
    until = ctx.now + timedelta(seconds=ctx.ttl_seconds)
    what = f"schedule {key}"
    body = _get(
        client,
        f"schedules/{key}/users",
        what,
        params={"since": since.isoformat(), "until": until.isoformat()},
    )
    users = body.get("users") if isinstance(body, dict) else None
    if not isinstance(users, list) or not all(isinstance(u, dict) and "id" in u for u in users):
        raise UpstreamError(f"pagerduty sent an unexpected body for {what}: no list of users")
    # The endpoint is not paged, so the one answer must be the whole list: one that says there
    # is more (PagerDuty's classic `more` / `total`) is a partial list we cannot complete.
    total = body.get("total")
    if body.get("more") is True:
        said = "more: true"
    elif isinstance(total, int) and not isinstance(total, bool) and total > len(users):
        said = f"total {total}"
    else:
        return users
    raise incomplete(
        f"schedule {key} users",
        f"the answer says {said}, but this endpoint is not paged, after {len(users)} users",
    )


def fetch_escalation_policy(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """One escalation policy with its rules and targets (GET /escalation_policies/{id})."""
    what = f"escalation policy {key}"
    body = _get(client, f"escalation_policies/{key}", what)
    policy = body.get("escalation_policy") if isinstance(body, dict) else None
    if not isinstance(policy, dict) or policy.get("id") != key:
        raise UpstreamError(f"pagerduty sent an unexpected body for {what}: no escalation_policy")
    return policy


def fetch_schedule(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """The schedule object with its final layer rendered over the next 60 s
    (GET /schedules/{id}?since=&until=), as the mirror answers it."""
    what = f"schedule {key}"
    until = ctx.now + timedelta(seconds=ON_CALL_WINDOW_SECONDS)
    params = {"since": ctx.now.isoformat(), "until": until.isoformat(), "time_zone": "UTC"}
    body = _get(client, f"schedules/{key}", what, params=params)
    schedule = body.get("schedule") if isinstance(body, dict) else None
    if not isinstance(schedule, dict) or schedule.get("id") != key:
        raise UpstreamError(f"pagerduty sent an unexpected body for {what}: no schedule")
    return schedule


def fetch_schedule_on_call(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """Users on call now in schedule `key`: the user references of the schedule's final layer
    over the next 60 s (`fetch_schedule`), skipping deleted users."""
    what = f"schedule {key}"
    final = fetch_schedule(client, key, ctx).get("final_schedule")
    entries = final.get("rendered_schedule_entries") if isinstance(final, dict) else None
    if not isinstance(entries, list):
        raise UpstreamError(
            f"pagerduty sent an unexpected body for {what}: "
            "no final_schedule.rendered_schedule_entries"
        )
    users: list[JSONValue] = []
    for entry in entries:
        user = entry.get("user") if isinstance(entry, dict) else None
        if not isinstance(user, dict) or not isinstance(user.get("id"), str):
            raise UpstreamError(f"pagerduty sent an entry without a user id for {what}")
        if not user.get("deleted_at"):
            users.append(user)
    return users


ALL_USERS_KEY = KeyFormat(pattern="all", description="the word all (the whole list)", example="all")
USERS_PAGE = 100  # PagerDuty's largest page


def fetch_all_users(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """Every user of the account (GET /users, classic offset pagination with `total`); a list
    whose pages do not add up to the announced total is refused, never stored as complete."""
    users: list[JSONValue] = []
    for _ in range(MAX_PAGES):
        params = {"offset": str(len(users)), "limit": str(USERS_PAGE), "total": "true"}
        body = _get(client, "users", "the user list", params=params)
        page = body.get("users") if isinstance(body, dict) else None
        if not isinstance(page, list) or not all(isinstance(u, dict) and "id" in u for u in page):
            raise UpstreamError("pagerduty sent an unexpected body for the user list: no users")
        users += page
        total = body.get("total")
        if body.get("more") is not True or not page:
            if isinstance(total, int) and not isinstance(total, bool) and total != len(users):
                raise incomplete("the user list", f"total {total}, but {len(users)} users came")
            if body.get("more") is True:
                raise incomplete(
                    "the user list", f"an empty page that says more, after {len(users)}"
                )
            return users
    raise incomplete("the user list", f"still more after {MAX_PAGES} pages")


def fetch_user(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """One user by id (GET /users/{id}); 404 for users that do not exist or were deleted."""
    what = f"user {key}"
    body = _get(client, f"users/{key}", what)
    user = body.get("user") if isinstance(body, dict) else None
    if not isinstance(user, dict) or user.get("id") != key:
        raise UpstreamError(f"pagerduty sent an unexpected body for {what}: no user")
    return user


def raw_get(client: Any, path_and_query: str) -> tuple[JSONValue, dict[str, str]]:
    """GET any path (for `mirror = "any"`): the JSON body; PagerDuty pages in the body."""
    what = path_and_query.split("?", 1)[0]
    body = _get(client, path_and_query.lstrip("/"), what)
    # A page with no items that says `more` is a truncated list (as fetch_all_users refuses it).
    says_more = isinstance(body, dict) and body.get("more") is True
    if says_more and not any(value for value in body.values() if isinstance(value, list)):
        raise incomplete(f"pagerduty: {what}", "an empty page that says more")
    return body, {}


DATASETS = (
    DatasetDefinition(
        name="schedule_users",
        key_format=PAGERDUTY_ID,
        default_ttl_seconds=300.0,
        fetch=fetch_schedule_users,
        description="users on call in a schedule, from now to one TTL ahead",
        schema=list[User],
    ),
    DatasetDefinition(
        name="escalation_policy",
        key_format=PAGERDUTY_ID,
        default_ttl_seconds=600.0,
        fetch=fetch_escalation_policy,
        description="an escalation policy with its rules and targets",
        schema=EscalationPolicy,
    ),
    DatasetDefinition(
        name="schedule_on_call",
        key_format=PAGERDUTY_ID,
        default_ttl_seconds=300.0,
        fetch=fetch_schedule_on_call,
        description="users on call now in a schedule (its final layer over the next 60 s)",
        schema=list[OnCallReference],
    ),
    DatasetDefinition(
        name="schedule",
        key_format=PAGERDUTY_ID,
        default_ttl_seconds=300.0,
        fetch=fetch_schedule,
        description="a schedule with its final layer over the next 60 s (for the mirror)",
        schema=Identified,
    ),
    DatasetDefinition(
        name="users",
        key_format=ALL_USERS_KEY,
        default_ttl_seconds=3600.0,
        fetch=fetch_all_users,
        description="every user of the account, key `all` (for the mirror's /users)",
        schema=list[Identified],
    ),
    DatasetDefinition(
        name="user",
        key_format=PAGERDUTY_ID,
        default_ttl_seconds=3600.0,
        fetch=fetch_user,
        description="a user by id, with name and email",
        schema=UserRecord,
    ),
    mirror_any.definition(raw_get),
)
