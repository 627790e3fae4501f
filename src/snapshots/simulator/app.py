"""The simulator's HTTP app: fake upstream APIs under /pagerduty, and a control API under /_sim."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, Router, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from snapshots.simulator import pagerduty_data as pd
from snapshots.simulator.state import SimulatorState


def _state(request: Request[Any, Any, State]) -> SimulatorState:
    state: SimulatorState = request.app.state.simulator
    return state


def _pagerduty_error(status: int, message: str, code: int) -> Response[Any]:
    return Response({"error": {"message": message, "code": code}}, status_code=status)


async def _pagerduty_schedule_answer(
    request: Request[Any, Any, State],
    schedule_id: str,
    body: Callable[[int, int], dict[str, Any]],
) -> Response[Any]:
    """Answer as PagerDuty does: latency, token check, 404 for unknown schedules, then `body`.

    `body(schedule_number, rotation)` builds the success body. Every answer is counted.
    """
    state = _state(request)
    if state.latency_seconds:
        await asyncio.sleep(state.latency_seconds)
    n = pd.schedule_number(schedule_id)
    if request.headers.get("authorization") != f"Token token={state.tokens['pagerduty']}":
        response = _pagerduty_error(401, "Invalid Credentials", 2006)
    elif n is None:
        response = _pagerduty_error(404, "Not Found", 2100)
    else:
        response = Response(body(n, state.rotation(schedule_id)), status_code=200)
    state.count("pagerduty", response.status_code or 200)
    return response


@get("/schedules/{schedule_id:str}/users")
async def pagerduty_schedule_users(
    request: Request[Any, Any, State], schedule_id: FromPath[str]
) -> Response[Any]:
    """GET /schedules/{id}/users: the users on call in the schedule's window."""
    return await _pagerduty_schedule_answer(
        request, schedule_id, lambda n, rotation: {"users": pd.on_call_users(n, rotation)}
    )


@get("/schedules/{schedule_id:str}")
async def pagerduty_schedule(
    request: Request[Any, Any, State], schedule_id: FromPath[str]
) -> Response[Any]:
    """GET /schedules/{id}: the schedule object."""
    return await _pagerduty_schedule_answer(
        request, schedule_id, lambda n, rotation: {"schedule": pd.schedule(n, rotation)}
    )


class LatencyBody(msgspec.Struct):
    seconds: float


class TokenBody(msgspec.Struct):
    token: str


@get("/counters")
async def counters(request: Request[Any, Any, State]) -> dict[str, Any]:
    """Requests each fake upstream answered, by status."""
    return _state(request).counters()


@post("/reset", status_code=200)
async def reset(request: Request[Any, Any, State]) -> dict[str, Any]:
    """Zero the counters, undo data mutations, restore default tokens and latency."""
    _state(request).reset()
    return {"reset": True}


@put("/latency")
async def set_latency(
    request: Request[Any, Any, State], data: JSONBody[LatencyBody]
) -> dict[str, float]:
    """Add this many seconds before every fake upstream answer."""
    _state(request).latency_seconds = max(0.0, data.seconds)
    return {"seconds": _state(request).latency_seconds}


@post("/pagerduty/schedules/{schedule_id:str}/rotate", status_code=200)
async def rotate_schedule(
    request: Request[Any, Any, State], schedule_id: FromPath[str]
) -> Response[Any]:
    """Change who is on call in a schedule, so the next fetch sees a new version."""
    if pd.schedule_number(schedule_id) is None:
        return Response({"error": f"no schedule {schedule_id}"}, status_code=404)
    return Response({"schedule": schedule_id, "rotation": _state(request).rotate(schedule_id)})


@put("/tokens/{provider:str}")
async def set_token(
    request: Request[Any, Any, State], provider: FromPath[str], data: JSONBody[TokenBody]
) -> Response[Any]:
    """Rotate the API token a fake upstream accepts (old tokens then get 401)."""
    state = _state(request)
    if provider not in state.tokens:
        return Response({"error": f"no provider {provider}"}, status_code=404)
    state.tokens[provider] = data.token
    return Response({"provider": provider, "rotated": True}, status_code=200)


def create_simulator_app(state: SimulatorState | None = None) -> Litestar:
    """A Litestar app serving every fake upstream under its provider prefix."""
    return Litestar(
        route_handlers=[
            Router("/pagerduty", route_handlers=[pagerduty_schedule_users, pagerduty_schedule]),
            Router(
                "/_sim", route_handlers=[counters, reset, set_latency, set_token, rotate_schedule]
            ),
        ],
        state=State({"simulator": state or SimulatorState()}),
        openapi_config=None,
        logging_config=None,
    )
