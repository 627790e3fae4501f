"""Fake GitHub REST API under /github: repositories, their collaborators, users, and the `acme`
organisation with its members.

Every answer carries GitHub's rate headers, every 200 a weak ETag; a request whose
`If-None-Match` still matches gets a 304 that does not use the rate limit, as on GitHub.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, Router, get
from litestar.datastructures import State
from litestar.params import FromPath

from snapshots.simulator import github_data as gh
from snapshots.simulator.state import SimulatorState, Sizes
from snapshots.simulator.upstream import Answer, Dialect, Shape, base_url, serve, simulator_state

PREFIX = "/github"
DOCS = "https://docs.github.com/rest"
RATE_LIMIT_DOCS = "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
AFFILIATIONS = ("outside", "direct", "all")
PERMISSIONS = ("pull", "triage", "push", "maintain", "admin")


def _error(status: int, message: str) -> Answer:
    return Answer(status, {"message": message, "documentation_url": DOCS, "status": str(status)})


NOT_FOUND = _error(404, "Not Found")


def etag(answer: Answer) -> str:
    """A weak ETag over the body and its Link: a page whose items stay but whose pagination
    moved (the list grew past a page, or a fault overstates it) is not answered 304."""
    digest = hashlib.sha256(answer.content())
    digest.update(answer.headers.get("Link", "").encode())
    return f'W/"{digest.hexdigest()}"'


def _matches(if_none_match: str, tag: str) -> bool:
    """Weak comparison of `If-None-Match` (a list of tags, or *) with `tag`."""
    candidates = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in candidates or tag.removeprefix("W/") in candidates


class GitHubDialect(Dialect):
    """`Authorization: token ...` or `Bearer ...`; errors as `{"message", "documentation_url"}`."""

    name = "github"

    def authorized(self, request: Request[Any, Any, State], token: str) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() in ("token", "bearer") and value.strip() == token

    def unauthorized(self) -> Answer:
        return _error(401, "Bad credentials")

    def error(self, status: int) -> Answer:
        return _error(status, HTTPStatus(status).phrase)

    def throttled(self, limit: int, reset_seconds: int, retry_after: str | None) -> Answer:
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(math.ceil(time.time() + reset_seconds)),
            "X-RateLimit-Used": str(limit),
            "X-RateLimit-Resource": "core",
        }
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        body = {
            "message": "API rate limit exceeded for user ID 1.",
            "documentation_url": RATE_LIMIT_DOCS,
        }
        return Answer(403, body, headers)

    def revalidate(
        self, request: Request[Any, Any, State], current: Callable[[], Answer]
    ) -> Answer | None:
        if_none_match = request.headers.get("if-none-match")
        if not if_none_match:
            return None
        answer = current()
        if answer.status != 200 or not _matches(if_none_match, etag(answer)):
            return None
        return Answer(304, headers={"ETag": etag(answer)})

    def finish(
        self, request: Request[Any, Any, State], answer: Answer, state: SimulatorState
    ) -> Answer:
        window = state.window(self.name)
        headers = {
            "X-RateLimit-Limit": str(window.limit),
            "X-RateLimit-Remaining": str(window.remaining),
            "X-RateLimit-Reset": str(math.ceil(time.time() + window.reset_seconds)),
            "X-RateLimit-Used": str(window.used),
            "X-RateLimit-Resource": "core",
        }
        if answer.status == 200 and answer.raw is None:
            headers["ETag"] = etag(answer)
        return answer.with_headers(headers)


DIALECT = GitHubDialect()


def _repo(request: Request[Any, Any, State], owner: str, repo: str) -> tuple[int | None, int]:
    """The repo's number (None if there is no such repo) and how often it has been mutated."""
    state = simulator_state(request)
    n = gh.repo_number(owner, repo, state.sizes.repos)
    if n is None:
        return None, 0
    return n, state.mutation("github", gh.full_name(n))


@get("/repos/{owner:str}/{repo:str}")
async def repository(
    request: Request[Any, Any, State], owner: FromPath[str], repo: FromPath[str]
) -> Response[bytes]:
    """GET /repos/{owner}/{repo}: the repository object."""
    api = base_url(request, PREFIX)
    n, mutation = _repo(request, owner, repo)

    def answer(shape: Shape) -> Answer:
        if shape == "empty":
            return Answer(200, {})
        return NOT_FOUND if n is None else Answer(200, gh.repository(api, n, mutation))

    return await serve(request, DIALECT, answer)


def _page_link(request: Request[Any, Any, State], page: int, rel: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
    query = urlencode([*params, ("page", str(page))])
    return f'<{base_url(request, "")}{request.url.path}?{query}>; rel="{rel}"'


def _link_header(request: Request[Any, Any, State], page: int, last: int) -> str | None:
    """GitHub's `Link`: prev/next/last/first, absolute URLs on the address the client used."""
    links = []
    if page > 1:
        links.append(_page_link(request, min(page - 1, last), "prev"))
    if page < last:
        links += [_page_link(request, page + 1, "next"), _page_link(request, last, "last")]
    if page > 1:
        links.append(_page_link(request, 1, "first"))
    return ", ".join(links) or None


def _int_param(request: Request[Any, Any, State], name: str, default: int) -> int:
    value = request.query_params.get(name, "")
    return int(value) if value.isdigit() and int(value) > 0 else default


def _paged(request: Request[Any, Any, State], items: list[Any], shape: Shape) -> Answer:
    """One page (`per_page`, `page`) of `items` with GitHub's `Link`; under an `overstated`
    fault the Link counts one page more than there is (that page answers []), under
    `truncated` the page comes back empty."""
    per_page = min(_int_param(request, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
    page = _int_param(request, "page", 1)
    last = max(1, math.ceil(len(items) / per_page))
    link = _link_header(request, page, last + 1 if shape == "overstated" else last)
    body = [] if shape == "truncated" else items[(page - 1) * per_page : page * per_page]
    return Answer(200, body, {"Link": link} if link else {})


@get("/repos/{owner:str}/{repo:str}/collaborators")
async def collaborators(
    request: Request[Any, Any, State], owner: FromPath[str], repo: FromPath[str]
) -> Response[bytes]:
    """GET /repos/{owner}/{repo}/collaborators?per_page=&page=&affiliation=&permission="""
    api = base_url(request, PREFIX)
    n, mutation = _repo(request, owner, repo)
    affiliation = request.query_params.get("affiliation", "all")
    permission = request.query_params.get("permission")

    def answer(shape: Shape) -> Answer:
        if shape == "empty":
            return Answer(200, [])
        if n is None:
            return NOT_FOUND
        if affiliation not in AFFILIATIONS or (permission and permission not in PERMISSIONS):
            return _error(422, "Validation Failed")
        users = gh.collaborators(api, n, mutation)
        if affiliation == "outside":
            users = [u for u in users if gh.is_outside_collaborator(u)]
        if permission:
            users = [u for u in users if u["permissions"][permission]]
        return _paged(request, users, shape)

    return await serve(request, DIALECT, answer)


@get("/orgs/{org:str}")
async def organization(request: Request[Any, Any, State], org: FromPath[str]) -> Response[bytes]:
    """GET /orgs/{org}: the organisation (only `acme` exists)."""
    api = base_url(request, PREFIX)
    repos = simulator_state(request).sizes.repos

    def answer(shape: Shape) -> Answer:
        if shape == "empty":
            return Answer(200, {})
        if org.lower() != gh.ORG:
            return NOT_FOUND
        return Answer(200, gh.organization_profile(api, repos))

    return await serve(request, DIALECT, answer)


@get("/orgs/{org:str}/members")
async def members(request: Request[Any, Any, State], org: FromPath[str]) -> Response[bytes]:
    """GET /orgs/{org}/members?per_page=&page=: the members of `acme`, every user who
    collaborates on one of its repos (as they are now) and is not an outside collaborator."""
    api = base_url(request, PREFIX)
    state = simulator_state(request)
    mutations = {
        n: state.mutation("github", gh.full_name(n)) for n in range(1, state.sizes.repos + 1)
    }

    def answer(shape: Shape) -> Answer:
        if shape == "empty":
            return Answer(200, [])
        if org.lower() != gh.ORG:
            return NOT_FOUND
        return _paged(request, gh.members(api, mutations), shape)

    return await serve(request, DIALECT, answer)


@get("/users/{username:str}")
async def user(request: Request[Any, Any, State], username: FromPath[str]) -> Response[bytes]:
    """GET /users/{login}: a collaborator's profile, or the organisation's."""
    api = base_url(request, PREFIX)
    k = gh.user_number(username)

    def answer(shape: Shape) -> Answer:
        if shape == "empty":
            return Answer(200, {})
        if username.lower() == gh.ORG:
            return Answer(200, gh.organization(api))
        return NOT_FOUND if k is None else Answer(200, gh.profile(api, k))

    return await serve(request, DIALECT, answer)


router = Router(PREFIX, route_handlers=[repository, collaborators, organization, members, user])


def object_exists(object_id: str, sizes: Sizes) -> bool:
    """Whether `object_id` is a repository full name (`acme/repo-03`) that can be mutated."""
    owner, _, name = object_id.partition("/")
    n = gh.repo_number(owner, name, sizes.repos)
    return n is not None and object_id == gh.full_name(n)
