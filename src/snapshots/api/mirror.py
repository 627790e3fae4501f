"""`/mirror/<instance>/...`: the upstream's own API shapes, answered from snapshots, so an
integration keeps its client library (`pagerduty`, PyGithub, `jira`) and changes only the base URL.

The kind declares the paths (`ProviderKind.mirror`); this module matches them, authenticates the
gateway token the library sends in its own scheme (roles apply; nothing is forwarded upstream),
reads the snapshots through the reader and answers with their freshness headers, an ETag and
304s. Errors are in the upstream's shape and status, so the library's error handling works.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from litestar import Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp

from snapshots.api.auth import TokenStore
from snapshots.api.composed import ComposedRead
from snapshots.api.reader import SnapshotReader, json_response
from snapshots.errors import DatasetDisabled, MalformedKey, SnapshotsError, Unauthorized
from snapshots.logs import get_logger
from snapshots.providers import mirror_any
from snapshots.providers.kind import Mirror, MirrorRequest, MirrorRoute
from snapshots.providers.links import relinked
from snapshots.registry import Registry

log = get_logger(__name__)


class _NotConfigured(DatasetDisabled):
    """A mirror route's dataset is not in jobs.toml (with mirror = "any", the path is cached
    as any other)."""


def _error(
    mirror: Mirror, status: int, message: str, retry_after: int | None = None
) -> ASGIResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return json_response(mirror.error(status, message), status, headers)


def _upstream_error(mirror: Mirror, exc: SnapshotsError) -> ASGIResponse:
    """A read's failure in the upstream's shape: a malformed key is the upstream's 404 (no
    such object), a disabled or unconfigured dataset its 503 (not a 409 the library would not
    retry), everything else the gateway's status with its Retry-After."""
    if isinstance(exc, MalformedKey):
        return _error(mirror, 404, exc.message)
    if isinstance(exc, DatasetDisabled):
        return _error(mirror, 503, exc.message, 30)
    return _error(mirror, exc.status, exc.message, exc.retry_after)


def _urls(request: Request[Any, Any, State], registry: Registry, instance: str) -> tuple[str, str]:
    """This instance's mirror root as the caller reached it, and its upstream base URL."""
    mirror_url = f"{str(request.base_url).rstrip('/')}/mirror/{instance}"
    return mirror_url, (registry.providers[instance].settings.base_url or "").rstrip("/")


def _authorized(request: Request[Any, Any, State], mirror: Mirror) -> str | None:
    """The caller's name when the gateway token it sent (in the library's scheme) is good."""
    tokens: TokenStore = request.app.state.tokens
    if tokens.open:
        return "anonymous"
    token = mirror.token(request.headers.get("authorization", ""))
    if not token:
        return None
    try:
        principal = tokens.authenticate(token)
    except Unauthorized:
        return None
    return principal.name if principal is not None else None


@get(
    "/mirror/{instance:str}/{rest:path}",
    opt={"role": None},  # authenticated below, in the upstream library's own scheme
    tags=["mirror"],
    summary="The upstream's API, answered from snapshots",
    description="GET paths of the upstream API in its exact shapes (see README, 'Keeping your "
    "client library'); the gateway token goes where the upstream token used to.",
    name="mirror",
)
async def mirror_get(
    request: Request[Any, Any, State],
    reader: NamedDependency[SnapshotReader],
    registry: NamedDependency[Registry],
    instance: FromPath[str],
    rest: FromPath[Path],
) -> ASGIApp:
    provider = registry.providers.get(instance)
    mirror = provider.kind.mirror if provider is not None else None
    if provider is None or mirror is None:
        names = (
            ", ".join(n for n, p in sorted(registry.providers.items()) if p.kind.mirror) or "none"
        )
        body = {"message": f"no mirror for {instance[:80]!r}; mirrored providers: {names}"}
        return json_response(body, 404)
    caller = _authorized(request, mirror)
    if caller is None:
        return _error(
            mirror,
            401,
            "the gateway token is missing or unknown: send your snapshots token where the "
            "upstream token used to go",
        )
    request.scope.setdefault("state", {})["principal"] = caller
    path = "/" + str(rest).lstrip("/")
    for route in mirror.routes:
        match = re.fullmatch(route.pattern, path)
        if match is not None:
            return await _answer(request, reader, registry, instance, mirror, route, match)
    if provider.settings.mirror == "any":
        return await _any_path(request, reader, registry, instance, mirror, path)
    served = ", ".join(route.shows for route in mirror.routes)
    return _error(
        mirror,
        404,
        f"the mirror does not serve {path[:200]}; it serves GET {served} "
        '(mirror = "any" in the provider\'s table caches every GET path)',
    )


async def _any_path(
    request: Request[Any, Any, State],
    reader: SnapshotReader,
    registry: Registry,
    instance: str,
    mirror: Mirror,
    path: str,
) -> ASGIResponse:
    """`mirror = "any"`: the path and its sorted query as a key of `<instance>.mirror_any`,
    its stored body answered with the links it had, rewritten into the mirror."""
    key = mirror_any.key_of(path, request.query_params.multi_items())
    mirror_url, upstream = _urls(request, registry, instance)
    read = ComposedRead(reader)
    try:
        stored = await read.data(f"{instance}.{mirror_any.NAME}", key)
    except SnapshotsError as exc:
        return _upstream_error(mirror, exc)
    headers = {
        name: value.replace(upstream, mirror_url) if upstream else value
        for name, value in (stored.get("headers") or {}).items()
    }
    body = relinked(stored.get("body"), upstream, mirror_url) if upstream else stored.get("body")
    return read.respond(request, body, headers, remember=reader.answers)


async def _answer(
    request: Request[Any, Any, State],
    reader: SnapshotReader,
    registry: Registry,
    instance: str,
    mirror: Mirror,
    route: MirrorRoute,
    match: re.Match[str],
) -> ASGIResponse:
    """One matched route: its snapshots read, its answer with their freshness, or the
    upstream-shaped error."""
    read = ComposedRead(reader)

    async def data(dataset: str, key: str) -> Any:
        name = f"{instance}.{dataset}"
        if name not in registry.datasets:
            raise _NotConfigured(f'this path reads {name}: add [datasets."{name}"] to jobs.toml')
        return await read.data(name, key)

    def options(dataset: str) -> Any:
        registered = registry.datasets.get(f"{instance}.{dataset}")
        return registered.options if registered is not None else None

    mirror_url, upstream = _urls(request, registry, instance)
    mirror_request = MirrorRequest(
        instance=instance,
        params={k: v for k, v in match.groupdict().items() if v is not None},
        query=dict(request.query_params.items()),
        mirror_url=mirror_url,
        read=data,
        upstream_url=upstream,
        settings=registry.providers[instance].settings,
        options=options,
        queries={k: tuple(request.query_params.getall(k)) for k in request.query_params},
    )
    try:
        answer = await route.answer(mirror_request)
    except _NotConfigured as exc:
        if registry.providers[instance].settings.mirror == "any":
            path = "/" + str(request.path_params["rest"]).lstrip("/")
            return await _any_path(request, reader, registry, instance, mirror, path)
        return _upstream_error(mirror, exc)
    except SnapshotsError as exc:
        return _upstream_error(mirror, exc)
    if answer.status != 200:
        return json_response(answer.body, answer.status, dict(answer.headers))
    return read.respond(request, answer.body, answer.headers, remember=reader.answers)
