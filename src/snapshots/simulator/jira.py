"""Fake Jira REST API under /jira: projects, Server search (startAt) and Cloud search (tokens).

Served under /rest/api/2, /rest/api/3 and /rest/api/latest alike. The `jira` library also reads
`serverInfo` (deployment type: Server or Cloud, see the control API) and `field` before searching.
"""

from __future__ import annotations

import base64
import binascii
from http import HTTPStatus
from typing import Any

from litestar import HttpMethod, Request, Response, Router, get, route
from litestar.datastructures import State
from litestar.params import FromPath

from snapshots.simulator import jira_data as jd
from snapshots.simulator.jira_params import SearchParams, search_params
from snapshots.simulator.jql import JqlError, parse
from snapshots.simulator.state import Sizes
from snapshots.simulator.upstream import Answer, Dialect, Shape, base_url, serve, simulator_state

PREFIX = "/jira"
VERSIONS = ("2", "3", "latest")
DEFAULT_MAX_RESULTS = 50
MAX_RESULTS = 100


def _error(status: int, message: str) -> Answer:
    return Answer(status, {"errorMessages": [message], "errors": {}})


class JiraDialect(Dialect):
    """HTTP Basic (password = token) or `Bearer`; errors as `{"errorMessages", "errors"}`."""

    name = "jira"

    def authorized(self, request: Request[Any, Any, State], token: str) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return value.strip() == token
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return decoded.partition(":")[2] == token

    def unauthorized(self) -> Answer:
        return _error(
            401, "You are not authenticated. Authentication required to perform this operation."
        )

    def error(self, status: int) -> Answer:
        return _error(status, HTTPStatus(status).phrase)

    def throttled(self, limit: int, reset_seconds: int, retry_after: str | None) -> Answer:
        headers = {"Retry-After": retry_after if retry_after is not None else str(reset_seconds)}
        return _error(429, "Rate limit exceeded.").with_headers(headers)


DIALECT = JiraDialect()


def _api(request: Request[Any, Any, State], version: str) -> str:
    return base_url(request, f"{PREFIX}/rest/api/{version}")


def _unknown_version(request: Request[Any, Any, State]) -> Answer:
    return _error(404, f"null for uri: {request.url}")


@get("/rest/api/{version:str}/serverInfo")
async def server_info(request: Request[Any, Any, State], version: FromPath[str]) -> Response[bytes]:
    """GET serverInfo (no auth needed, as on Jira): version and deployment type."""
    deployment = simulator_state(request).jira_deployment

    def answer(shape: Shape) -> Answer:
        if version not in VERSIONS:
            return _unknown_version(request)
        return Answer(
            200, {} if shape == "empty" else jd.server_info(base_url(request, PREFIX), deployment)
        )

    return await serve(request, DIALECT, answer, authenticate=False)


@get("/rest/api/{version:str}/field")
async def fields(request: Request[Any, Any, State], version: FromPath[str]) -> Response[bytes]:
    """GET field: the fields issues carry (the library maps JQL names to ids with it)."""

    def answer(shape: Shape) -> Answer:
        if version not in VERSIONS:
            return _unknown_version(request)
        return Answer(200, [] if shape == "empty" else jd.field_list())

    return await serve(request, DIALECT, answer)


@get("/rest/api/{version:str}/project/{key:str}")
async def project(
    request: Request[Any, Any, State], version: FromPath[str], key: FromPath[str]
) -> Response[bytes]:
    """GET project/{key or id}: the project object."""
    n = jd.project_number(key, simulator_state(request).sizes.projects)

    def answer(shape: Shape) -> Answer:
        if version not in VERSIONS:
            return _unknown_version(request)
        if shape == "empty":
            return Answer(200, {})
        if n is None:
            return _error(404, f"No project could be found with key '{key}'.")
        return Answer(200, jd.project(_api(request, version), n))

    return await serve(request, DIALECT, answer)


def _matching_issues(
    request: Request[Any, Any, State], version: str, params: SearchParams
) -> list[dict[str, Any]] | Answer:
    """The issues `params.jql` selects, in its order, or Jira's 400 for a query it rejects."""
    try:
        query = parse(params.jql)
    except JqlError as e:
        return _error(400, str(e))
    n = jd.project_number(query.project, simulator_state(request).sizes.projects)
    if n is None or query.project.isdigit():
        return _error(400, f"The value '{query.project}' does not exist for the field 'project'.")
    if query.status is not None and query.status.lower() not in map(str.lower, jd.status_names()):
        return _error(400, f"The value '{query.status}' does not exist for the field 'status'.")
    mutation = simulator_state(request).mutation("jira", jd.project_key(n))
    issues = jd.issues(_api(request, version), n, mutation)
    if query.status is not None:
        wanted = query.status.lower()
        issues = [
            i
            for i in issues
            if (i["fields"]["status"]["name"].lower() == wanted) != query.negate_status
        ]
    if query.order_by == "updated":
        issues.sort(key=lambda i: str(i["fields"]["updated"]))
    return issues[::-1] if query.descending else issues


@route("/rest/api/{version:str}/search", http_method=[HttpMethod.GET, HttpMethod.POST])
async def search(request: Request[Any, Any, State], version: FromPath[str]) -> Response[bytes]:
    """GET/POST search (Server/Data Center): jql, startAt, maxResults, fields; `total` counts all."""
    params = await search_params(request)

    def answer(shape: Shape) -> Answer:
        if version not in VERSIONS:
            return _unknown_version(request)
        if isinstance(params, str):
            return _error(400, params)
        start = params.start_at
        size = DEFAULT_MAX_RESULTS if params.max_results is None else params.max_results
        size = min(size, MAX_RESULTS)
        issues = [] if shape == "empty" else _matching_issues(request, version, params)
        if isinstance(issues, Answer):
            return issues
        page = [jd.select_fields(i, params.fields) for i in issues[start : start + size]]
        body = {"expand": "schema,names", "startAt": start, "maxResults": size}
        # truncated: no issues though `total` counts them all; overstated: one page more.
        total = len(issues) + (size if shape == "overstated" else 0)
        return Answer(200, {**body, "total": total, "issues": [] if shape == "truncated" else page})

    return await serve(request, DIALECT, answer)


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"sim-offset:{offset}".encode()).decode()


def _token_offset(token: str | None) -> int | None:
    """The offset a nextPageToken stands for; 0 without one, None when it is not ours."""
    if not token:
        return 0
    try:
        kind, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return int(offset) if kind == "sim-offset" and offset.isdigit() else None


@route("/rest/api/{version:str}/search/jql", http_method=[HttpMethod.GET, HttpMethod.POST])
async def search_jql(request: Request[Any, Any, State], version: FromPath[str]) -> Response[bytes]:
    """GET/POST search/jql (Cloud): jql, nextPageToken, maxResults, fields; no total."""
    params = await search_params(request)

    def answer(shape: Shape) -> Answer:
        if version not in VERSIONS:
            return _unknown_version(request)
        if isinstance(params, str):
            return _error(400, params)
        start = _token_offset(params.next_page_token)
        if start is None:
            return _error(400, "The provided next page token is invalid or expired.")
        size = max(1, min(params.max_results or DEFAULT_MAX_RESULTS, MAX_RESULTS))
        issues = [] if shape == "empty" else _matching_issues(request, version, params)
        if isinstance(issues, Answer):
            return issues
        page = [jd.select_fields(i, params.fields) for i in issues[start : start + size]]
        if shape == "truncated":
            page = []  # the token and isLast stay as they were
        if shape == "overstated":  # "more to come", with no token to get it
            return Answer(200, {"issues": page, "isLast": False})
        if start + size >= len(issues):
            return Answer(200, {"issues": page, "isLast": True})
        return Answer(
            200, {"issues": page, "nextPageToken": _page_token(start + size), "isLast": False}
        )

    return await serve(request, DIALECT, answer)


router = Router(PREFIX, route_handlers=[server_info, fields, project, search, search_jql])


def object_exists(object_id: str, sizes: Sizes) -> bool:
    """Whether `object_id` is a project key (`PRJ3`) that can be mutated."""
    n = jd.project_number(object_id, sizes.projects)
    return n is not None and object_id == jd.project_key(n)
