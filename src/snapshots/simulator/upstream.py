"""The path every fake upstream request takes: latency, fault, rate limit, auth, endpoint, count.

Each provider supplies a `Dialect` (its auth scheme, error bodies and throttled answer) and each
route an `Endpoint`; `serve` runs the steps in the order the real APIs apply them.
"""

from __future__ import annotations

import asyncio
import functools
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import msgspec
from litestar import Request, Response
from litestar.datastructures import State

from snapshots.simulator.faults import PAGING_FAULTS, Fault
from snapshots.simulator.state import SimulatorState

MALFORMED_BODY = b'{"truncated": [{"id": "'
FAULT_RESET_SECONDS = 60


@dataclass(frozen=True)
class Answer:
    """A status, a JSON body (or raw bytes, or nothing) and headers, before it becomes a Response."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    raw: bytes | None = None

    def content(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return b"" if self.body is None else msgspec.json.encode(self.body)

    def with_headers(self, headers: Mapping[str, str]) -> Answer:
        """This answer with `headers` added; headers the answer already has win."""
        return Answer(self.status, self.body, {**headers, **self.headers}, self.raw)

    def response(self) -> Response[bytes]:
        return Response(
            self.content(),
            status_code=self.status,
            headers=dict(self.headers),
            media_type="application/json",
        )


Shape = Literal["full", "empty", "truncated", "overstated"]
"""How an endpoint answers: as usual, or under an `empty`, `truncated` or `overstated` fault
(see `Fault`); endpoints that are not paged answer `truncated` and `overstated` as usual."""

# endpoint(shape) answers the request in that shape.
Endpoint = Callable[[Shape], Answer]


class Dialect(ABC):
    """How one provider speaks: its auth check, error bodies and throttled answer."""

    name = ""

    @abstractmethod
    def authorized(self, request: Request[Any, Any, State], token: str) -> bool: ...

    @abstractmethod
    def unauthorized(self) -> Answer: ...

    @abstractmethod
    def error(self, status: int) -> Answer: ...

    @abstractmethod
    def throttled(self, limit: int, reset_seconds: int, retry_after: str | None) -> Answer:
        """The provider's answer to a request over its limit, `reset_seconds` before a slot frees."""

    def revalidate(
        self, request: Request[Any, Any, State], current: Callable[[], Answer]
    ) -> Answer | None:
        """An answer that skips the rate limit (GitHub's 304s), or None to go on as usual;
        `current()` is the answer the request would get."""
        return None

    def finish(
        self, request: Request[Any, Any, State], answer: Answer, state: SimulatorState
    ) -> Answer:
        """Headers every answer carries (GitHub's rate headers and ETags)."""
        return answer


def simulator_state(request: Request[Any, Any, State]) -> SimulatorState:
    state: SimulatorState = request.app.state.simulator
    return state


def base_url(request: Request[Any, Any, State], prefix: str) -> str:
    """The URL clients reached `prefix` at, for links and `self`/`url` fields they follow."""
    return str(request.base_url).rstrip("/") + prefix


def request_target(request: Request[Any, Any, State]) -> str:
    """Path and query, as fault `path` filters match them."""
    query = request.url.query
    return f"{request.url.path}?{query}" if query else request.url.path


_INSTANCE = re.compile(r"snapshots-instance/([A-Za-z0-9._-]+)")


def instance_of(request: Request[Any, Any, State]) -> str:
    """The gateway instance that sent a request, from its User-Agent tag ("" if untagged)."""
    match = _INSTANCE.search(request.headers.get("user-agent", ""))
    return match.group(1) if match else ""


def retry_after_seconds(retry_after: str | None) -> int | None:
    """Whole seconds a raw Retry-After value asks for (delta-seconds or an HTTP date)."""
    if retry_after is None:
        return None
    if retry_after.strip().isdigit():
        return int(retry_after)
    try:
        return max(0, math.ceil(parsedate_to_datetime(retry_after).timestamp() - time.time()))
    except (TypeError, ValueError):
        return None


def _fault_answer(
    fault: Fault, dialect: Dialect, endpoint: Endpoint, state: SimulatorState
) -> Answer:
    retry_after = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    if fault.kind == "error":
        return dialect.error(fault.status).with_headers(retry_after)
    if fault.kind == "malformed":
        return Answer(200, raw=MALFORMED_BODY)
    if fault.kind == "empty":
        return endpoint("empty")
    window = state.window(dialect.name)
    reset = retry_after_seconds(fault.retry_after)
    if reset is None:
        reset = window.reset_whole_seconds if dialect.name in state.limits else FAULT_RESET_SECONDS
    return dialect.throttled(window.limit, reset, fault.retry_after)


async def _answer(
    request: Request[Any, Any, State],
    dialect: Dialect,
    endpoint: Endpoint,
    state: SimulatorState,
    authenticate: bool,
    generation: int,
) -> Answer:
    fault = state.take_fault(dialect.name, request_target(request))
    shape: Shape = "full"
    if fault is not None and fault.kind in PAGING_FAULTS:
        shape = "truncated" if fault.kind == "truncated" else "overstated"
    elif fault is not None and fault.kind == "timeout":
        await asyncio.sleep(fault.seconds)
        if state.generation != generation:
            # A reset happened while it slept (a new test began): it must not use the new window.
            return dialect.error(503)
    elif fault is not None:
        return _fault_answer(fault, dialect, endpoint, state)
    authorized = not authenticate
    for account, token in state.account_tokens(dialect.name) if authenticate else ():
        if dialect.authorized(request, token):
            authorized = True
            state.count_account(dialect.name, account)
            break
    current = functools.partial(endpoint, shape)
    if authorized and (revalidated := dialect.revalidate(request, current)) is not None:
        return revalidated
    window = state.admit(dialect.name)
    if not window.accepted:
        state.count_violation(dialect.name)
        return dialect.throttled(window.limit, window.reset_whole_seconds, None)
    if not authorized:
        return dialect.unauthorized()
    return current()


async def serve(
    request: Request[Any, Any, State],
    dialect: Dialect,
    endpoint: Endpoint,
    authenticate: bool = True,
) -> Response[bytes]:
    """Answer one fake upstream request as the provider would, and count the answer."""
    state = simulator_state(request)
    generation = state.generation
    instance = instance_of(request)
    ticket = state.arrived(dialect.name, instance, request_target(request))
    try:
        if state.latency_seconds:
            await asyncio.sleep(state.latency_seconds)
        answer = await _answer(request, dialect, endpoint, state, authenticate, generation)
        answer = dialect.finish(request, answer, state)
    finally:
        state.answered(ticket)
    if state.generation == generation:
        state.count(dialect.name, answer.status, instance)
    return answer.response()
