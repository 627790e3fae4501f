"""The control API under /_sim: counters, requests in flight, reset, latency, sizes, tokens,
limits, faults, mutations."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Literal

import msgspec
from litestar import Request, Response, Router, delete, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from snapshots.simulator import github, jira, pagerduty
from snapshots.simulator.faults import Fault, FaultKind
from snapshots.simulator.state import PROVIDERS, Sizes
from snapshots.simulator.upstream import simulator_state

# Whether an object id names something a provider can mutate.
OBJECT_EXISTS: dict[str, Callable[[str, Sizes], bool]] = {
    "pagerduty": pagerduty.object_exists,
    "github": github.object_exists,
    "jira": jira.object_exists,
}


class LatencyBody(msgspec.Struct):
    seconds: float


class SizeBody(msgspec.Struct):
    """New object counts; a count left out keeps its current value."""

    schedules: int | None = None
    projects: int | None = None
    repos: int | None = None


MAX_SIZE = 1_000_000


class TokenBody(msgspec.Struct):
    token: str


class LimitBody(msgspec.Struct):
    requests: int
    period_seconds: float


class FaultBody(msgspec.Struct):
    kind: FaultKind
    count: int = 1
    path: str = ""
    status: int = 503
    retry_after: str | None = None
    seconds: float = 2.0


class DeploymentBody(msgspec.Struct):
    type: Literal["Server", "Cloud"]


def _ok(body: dict[str, Any]) -> Response[dict[str, Any]]:
    return Response(body, status_code=200)


def _refused(status: int, message: str) -> Response[dict[str, Any]]:
    return Response({"error": message}, status_code=status)


def _no_provider(provider: str) -> Response[dict[str, Any]] | None:
    return None if provider in PROVIDERS else _refused(404, f"no provider {provider}")


@get("/counters")
async def counters(request: Request[Any, Any, State]) -> dict[str, Any]:
    """Answers each fake upstream gave, by status, and its rate-limit violations."""
    return simulator_state(request).counters()


@get("/in_flight")
async def in_flight(request: Request[Any, Any, State]) -> list[dict[str, Any]]:
    """Fake upstream requests received and not answered yet (provider, the gateway instance
    that sent it, path, seconds so far), oldest first: what a gateway has in flight."""
    return simulator_state(request).in_flight()


@post("/reset", status_code=200)
async def reset(request: Request[Any, Any, State]) -> dict[str, Any]:
    """Everything back to defaults: counters, tokens, latency, limits, faults, mutations."""
    simulator_state(request).reset()
    return {"reset": True}


@put("/latency")
async def set_latency(
    request: Request[Any, Any, State], data: JSONBody[LatencyBody]
) -> dict[str, float]:
    """Add this many seconds before every fake upstream answer."""
    state = simulator_state(request)
    state.latency_seconds = max(0.0, data.seconds)
    return {"seconds": state.latency_seconds}


@get("/size")
async def get_size(request: Request[Any, Any, State]) -> dict[str, int]:
    """How many schedules, Jira projects and GitHub repos exist."""
    return dataclasses.asdict(simulator_state(request).sizes)


@put("/size")
async def set_size(
    request: Request[Any, Any, State], data: JSONBody[SizeBody]
) -> Response[dict[str, Any]]:
    """Resize the sized kinds (PSCH001.., PRJ1.., acme/repo-01..); reset restores the defaults."""
    asked = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
    if any(not 1 <= v <= MAX_SIZE for v in asked.values()):
        return _refused(400, f"sizes must be between 1 and {MAX_SIZE}")
    state = simulator_state(request)
    state.sizes = dataclasses.replace(state.sizes, **asked)
    return _ok(dataclasses.asdict(state.sizes))


@put("/tokens/{provider:str}")
async def set_token(
    request: Request[Any, Any, State], provider: FromPath[str], data: JSONBody[TokenBody]
) -> Response[dict[str, Any]]:
    """Rotate the API token a fake upstream accepts (old tokens then get 401)."""
    if refused := _no_provider(provider):
        return refused
    simulator_state(request).tokens[provider] = data.token
    return _ok({"provider": provider, "rotated": True})


@put("/accounts/{provider:str}/{account:str}")
async def add_account(
    request: Request[Any, Any, State],
    provider: FromPath[str],
    account: FromPath[str],
    data: JSONBody[TokenBody],
) -> Response[dict[str, Any]]:
    """Accept a further token as another account of the provider (counted by account)."""
    if refused := _no_provider(provider):
        return refused
    simulator_state(request).accounts.setdefault(provider, {})[data.token] = account
    return _ok({"provider": provider, "account": account})


@put("/limits/{provider:str}")
async def set_limit(
    request: Request[Any, Any, State], provider: FromPath[str], data: JSONBody[LimitBody]
) -> Response[dict[str, Any]]:
    """Enforce a sliding window: `requests` per `period_seconds`; more are throttled and counted."""
    if refused := _no_provider(provider):
        return refused
    if data.requests < 1 or data.period_seconds <= 0:
        return _refused(400, "requests must be >= 1 and period_seconds > 0")
    simulator_state(request).set_limit(provider, data.requests, data.period_seconds)
    return _ok(
        {"provider": provider, "requests": data.requests, "period_seconds": data.period_seconds}
    )


@delete("/limits/{provider:str}", status_code=200)
async def clear_limit(
    request: Request[Any, Any, State], provider: FromPath[str]
) -> Response[dict[str, Any]]:
    """Stop enforcing a rate limit on the provider."""
    if refused := _no_provider(provider):
        return refused
    simulator_state(request).clear_limit(provider)
    return _ok({"provider": provider, "limit": None})


@post("/faults/{provider:str}", status_code=200)
async def add_fault(
    request: Request[Any, Any, State], provider: FromPath[str], data: JSONBody[FaultBody]
) -> Response[dict[str, Any]]:
    """Queue a fault for the provider's next `count` requests whose path+query contains `path`."""
    if refused := _no_provider(provider):
        return refused
    if data.count < 1 or data.seconds < 0:
        return _refused(400, "count must be >= 1 and seconds >= 0")
    if data.status not in {s.value for s in HTTPStatus} or data.status < 400:
        return _refused(400, f"status must be an HTTP error status, not {data.status}")
    fault = Fault(data.kind, data.count, data.path, data.status, data.retry_after, data.seconds)
    simulator_state(request).add_fault(provider, fault)
    return _ok({"provider": provider, "queued": msgspec.to_builtins(data)})


@delete("/faults/{provider:str}", status_code=200)
async def clear_faults(
    request: Request[Any, Any, State], provider: FromPath[str]
) -> Response[dict[str, Any]]:
    """Drop every fault still queued for the provider."""
    if refused := _no_provider(provider):
        return refused
    simulator_state(request).clear_faults(provider)
    return _ok({"provider": provider, "faults": []})


@post("/mutate/{provider:str}/{object_id:path}", status_code=200)
async def mutate(
    request: Request[Any, Any, State], provider: FromPath[str], object_id: FromPath[str]
) -> Response[dict[str, Any]]:
    """Change an object's data one step (schedule, policy, `acme/repo-03`, `PRJ3`)."""
    if refused := _no_provider(provider):
        return refused
    object_id = object_id.lstrip("/")
    if not OBJECT_EXISTS[provider](object_id, simulator_state(request).sizes):
        return _refused(404, f"no {provider} object {object_id}")
    mutation = simulator_state(request).mutate(provider, object_id)
    return _ok({"provider": provider, "object": object_id, "mutation": mutation})


@post("/pagerduty/schedules/{schedule_id:str}/rotate", status_code=200)
async def rotate_schedule(
    request: Request[Any, Any, State], schedule_id: FromPath[str]
) -> Response[dict[str, Any]]:
    """Change who is on call in a schedule (the same as mutating it)."""
    sizes = simulator_state(request).sizes
    if not pagerduty.object_exists(schedule_id, sizes) or not schedule_id.startswith("PSCH"):
        return _refused(404, f"no schedule {schedule_id}")
    return _ok(
        {
            "schedule": schedule_id,
            "rotation": simulator_state(request).mutate("pagerduty", schedule_id),
        }
    )


@put("/jira/deployment")
async def set_jira_deployment(
    request: Request[Any, Any, State], data: JSONBody[DeploymentBody]
) -> dict[str, str]:
    """Answer serverInfo as a Server (default) or a Cloud deployment; the `jira` library
    picks its search API from it."""
    simulator_state(request).jira_deployment = data.type
    return {"deploymentType": data.type}


router = Router(
    "/_sim",
    route_handlers=[
        counters,
        in_flight,
        reset,
        set_latency,
        get_size,
        set_size,
        set_token,
        add_account,
        set_limit,
        clear_limit,
        add_fault,
        clear_faults,
        mutate,
        rotate_schedule,
        set_jira_deployment,
    ],
)
