"""qontract-api's PagerDuty routes, answered from snapshots: its consumers (qontract-reconcile's
integrations, through their generated client) switch by changing one URL.

`GET /api/v1/external/pagerduty/schedules/{schedule_id}/users` and
`.../escalation-policies/{policy_id}/users` take a reference to the PagerDuty token in a secret
manager (`secret_manager_url`, `path`, `field`, `version`); here it only selects the PagerDuty
instance (`secret_paths` in its settings) and is never used to fetch anything. Each upstream
object is a snapshot: the schedule's users on call now (`schedule_on_call`), each user by id
(`user`), the policy (`escalation_policy`), so each has its TTL, budget, single flight and
stale-if-error, and the answer carries their freshness (see `api/composed.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, Parameter
from litestar.types import ASGIApp

from snapshots.api.composed import ComposedRead
from snapshots.api.reader import SnapshotReader
from snapshots.api.schemas import ERROR_RESPONSES
from snapshots.errors import (
    BadParameter,
    DatasetDisabled,
    MalformedKey,
    UpstreamError,
    UpstreamNotFound,
)
from snapshots.providers.pagerduty.settings import PagerDutySettings
from snapshots.registry import Registry

KIND = "pagerduty"
PREFIX = "/api/v1/external/pagerduty"


class PagerDutyUser(msgspec.Struct, frozen=True):
    """PagerDuty user representation."""

    username: Annotated[str, msgspec.Meta(description="PagerDuty username (computed from email)")]


class ScheduleUsersResponse(msgspec.Struct, frozen=True):
    """Response model for schedule users endpoint."""

    users: Annotated[
        list[PagerDutyUser],
        msgspec.Meta(description="List of users currently on-call in the schedule"),
    ] = []


class EscalationPolicyUsersResponse(msgspec.Struct, frozen=True):
    """Response model for escalation policy users endpoint."""

    users: Annotated[
        list[PagerDutyUser], msgspec.Meta(description="List of users in the escalation policy")
    ] = []


SecretManagerUrl = Annotated[
    str, Parameter(description="Secret Manager URL", title="Secret Manager Url")
]
SecretPath = Annotated[str, Parameter(description="Path to the secret", title="Path")]
SecretField = Annotated[
    str | None, Parameter(description="Specific field within the secret", title="Field")
]
SecretVersion = Annotated[
    int | None, Parameter(description="Version of the secret", title="Version")
]

_RESPONSES = {k: v for k, v in ERROR_RESPONSES.items() if k != 429}


def _instances(registry: Registry) -> dict[str, PagerDutySettings]:
    return {
        name: provider.settings
        for name, provider in sorted(registry.providers.items())
        if provider.kind.name == KIND and isinstance(provider.settings, PagerDutySettings)
    }


def instance_for(registry: Registry, secret_path: str) -> str:
    """The PagerDuty instance a secret reference selects: the only one, or the one listing
    `secret_path` in its `secret_paths`. An instance with no datasets (the built-in
    `pagerduty` one, when the account is configured under another name) cannot answer, so it
    does not count when telling whether there is only one."""
    instances = _instances(registry)
    serving = {provider.name for provider in (d.provider for d in registry.datasets.values())}
    candidates = [name for name in instances if name in serving] or list(instances)
    if len(candidates) == 1:
        return candidates[0]
    for name, settings in instances.items():
        if secret_path in settings.secret_paths:
            return name
    names = ", ".join(instances)
    raise BadParameter(
        f"no PagerDuty instance answers to the secret path {secret_path[:200]!r}: add it to "
        f'secret_paths = [...] in the [providers.<name>] table (kind = "pagerduty") of the '
        f"account it belongs to (instances: {names})"
    )


def _require(registry: Registry, instance: str, *names: str) -> None:
    """409 naming the jobs.toml tables to add when a dataset these routes read is missing."""
    missing = [
        f"{instance}.{name}" for name in names if f"{instance}.{name}" not in registry.datasets
    ]
    if missing:
        tables = " and ".join(f'[datasets."{name}"]' for name in missing)
        raise DatasetDisabled(
            f"qontract-api's PagerDuty routes read {tables}: add them to jobs.toml"
        )


def _username(user: Any) -> str:
    """The local part of the user's email, which qontract-api calls the username."""
    return str(user.get("email", "")).split("@", 1)[0]


async def _users(
    read: ComposedRead, instance: str, user_ids: list[str], referrer: str
) -> list[PagerDutyUser]:
    """Each user by id, in order. A user the upstream does not have fails the whole answer:
    leaving it out would shrink the list a consumer acts on (a Slack group emptied by one
    vanished account), where a failed run changes nothing."""

    async def one(user_id: str) -> PagerDutyUser:
        try:
            return PagerDutyUser(_username(await read.data(f"{instance}.user", user_id)))
        except (UpstreamNotFound, MalformedKey) as exc:
            raise UpstreamError(
                f"{referrer} names user {user_id[:40]!r}, which {instance} cannot show "
                f"({exc.message}); nothing is answered rather than a shorter list"
            ) from None

    return list(await asyncio.gather(*(one(user_id) for user_id in user_ids)))


async def _on_call(read: ComposedRead, instance: str, schedule_id: str) -> list[PagerDutyUser]:
    """The users on call now in a schedule (its final layer, deleted users skipped)."""
    references = await read.data(f"{instance}.schedule_on_call", schedule_id)
    ids = [str(r["id"]) for r in references]
    return await _users(read, instance, ids, f"schedule {schedule_id}")


async def _schedule_target(
    read: ComposedRead, instance: str, schedule_id: str, referrer: str
) -> list[PagerDutyUser]:
    """A policy's schedule target; one the upstream does not have fails the answer with a
    message naming the policy (a 404 would read as "no such policy")."""
    try:
        return await _on_call(read, instance, schedule_id)
    except (UpstreamNotFound, MalformedKey) as exc:
        raise UpstreamError(
            f"{referrer} targets schedule {schedule_id[:40]!r}, which {instance} cannot show "
            f"({exc.message})"
        ) from None


def _route(path: str, operation_id: str, summary: str, description: str, answer: type) -> get:
    """A GET route declared as qontract-api declares it (operation id, summary, the `external`
    tag, bearer security, its 200 model), for a reader."""
    return get(
        f"{PREFIX}{path}",
        operation_id=operation_id,
        summary=summary,
        description=description,
        tags=["external"],
        security=[{"HTTPBearer": []}],
        responses={**_RESPONSES, 200: ResponseSpec(answer, description="Successful Response")},
        opt={"role": "reader"},
        name=f"qontract-api.{operation_id}",
    )


@_route(
    "/schedules/{schedule_id:str}/users",
    "pagerduty-schedule-users",
    "Get Schedule Users",
    "Users on call now in a PagerDuty schedule (qontract-api's route), from the "
    "`schedule_on_call` and `user` snapshots of the instance the secret path selects.",
    ScheduleUsersResponse,
)
async def schedule_users(
    request: Request[Any, Any, State],
    reader: NamedDependency[SnapshotReader],
    registry: NamedDependency[Registry],
    schedule_id: FromPath[str],
    secret_manager_url: SecretManagerUrl,
    path: SecretPath,
    field: SecretField = None,
    version: SecretVersion = None,
) -> ASGIApp:
    instance = instance_for(registry, path)
    _require(registry, instance, "schedule_on_call", "user")
    reader.registry.dataset(f"{instance}.schedule_on_call").check_key(schedule_id)
    read = ComposedRead(reader)
    users = await _on_call(read, instance, schedule_id)
    return read.respond(request, ScheduleUsersResponse(users=users))


@_route(
    "/escalation-policies/{policy_id:str}/users",
    "pagerduty-escalation-policy-users",
    "Get Escalation Policy Users",
    "Users an escalation policy pages first (qontract-api's route): its rules in order, a "
    "schedule target adding the users on call now, a user target that user, until a rule that "
    "found users and escalates after a delay.",
    EscalationPolicyUsersResponse,
)
async def escalation_policy_users(
    request: Request[Any, Any, State],
    reader: NamedDependency[SnapshotReader],
    registry: NamedDependency[Registry],
    policy_id: FromPath[str],
    secret_manager_url: SecretManagerUrl,
    path: SecretPath,
    field: SecretField = None,
    version: SecretVersion = None,
) -> ASGIApp:
    instance = instance_for(registry, path)
    _require(registry, instance, "escalation_policy", "schedule_on_call", "user")
    reader.registry.dataset(f"{instance}.escalation_policy").check_key(policy_id)
    read = ComposedRead(reader)
    policy = await read.data(f"{instance}.escalation_policy", policy_id)
    users: list[PagerDutyUser] = []
    referrer = f"escalation policy {policy_id}"
    for rule in policy["escalation_rules"]:  # the stored policy matched its schema
        for target in rule["targets"]:
            if target["type"] == "schedule_reference":
                users += await _schedule_target(read, instance, str(target["id"]), referrer)
            elif target["type"] == "user_reference":
                users += await _users(read, instance, [str(target["id"])], referrer)
        if users and rule["escalation_delay_in_minutes"] != 0:
            break  # the next rule pages only after a delay: these are the users paged first
    return read.respond(request, EscalationPolicyUsersResponse(users=users))


def api_routes(registry: Registry) -> Sequence[HTTPRouteHandler]:
    """The two routes, once any PagerDuty instance is configured."""
    return [schedule_users, escalation_policy_users] if _instances(registry) else []
