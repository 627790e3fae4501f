"""GitHub's REST API shapes under `/mirror/<instance>`, from snapshots: what PyGithub reads, so an
integration changes only its base URL and token.

Paths: `/repos/{owner}/{repo}` (`repo`), `/repos/{owner}/{repo}/collaborators` (`repo_collaborators`,
optionally filtered by `permission`), `/users/{login}` (`user`), `/orgs/{org}` (`org`) and
`/orgs/{org}/members` (`org_members`). Lists are paged from the snapshot of the whole list as
GitHub pages them: `per_page` (default 30, at most 100) and `page`, with a `Link` header (prev,
next, last, first) pointing back into the mirror.

Every `*url` field whose value points at the instance's API (`base_url`) is rewritten to the
mirror, templated ones (`.../following{/other_user}`) included: PyGithub follows them (a
repository's `url` + `/collaborators`, a collaborator's `url` to complete it), and they must come
back through the gateway, not go to GitHub with a gateway token.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlencode

from snapshots.providers.kind import Mirror, MirrorAnswer, MirrorRequest, MirrorRoute
from snapshots.providers.links import relinked

DOCS = "https://docs.github.com/rest"
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
PERMISSIONS = ("pull", "triage", "push", "maintain", "admin")
SEGMENT = "[^/]+"
# PyGithub raises its own exceptions by these exact messages (BadCredentialsException,
# UnknownObjectException), so the gateway's explanation cannot replace them.
_MESSAGES = {401: "Bad credentials", 404: "Not Found"}


def token(authorization: str) -> str | None:
    """`token <token>` (what PyGithub's Auth.Token sends) or `Bearer <token>`."""
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() in ("token", "bearer"):
        return rest.strip() or None
    return None


def error(status: int, message: str) -> Any:
    """GitHub's error body: `{"message", "documentation_url", "status"}`; 401 and 404 carry
    GitHub's own messages (with the gateway's explanation in `detail`), others the gateway's."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = {
        "message": _MESSAGES.get(status, message or phrase),
        "documentation_url": DOCS,
        "status": str(status),
    }
    if status in _MESSAGES and message:
        body["detail"] = message  # the gateway's explanation, e.g. which paths it serves
    return body


def _rewritten(request: MirrorRequest, value: Any) -> Any:
    if not request.upstream_url:
        return value
    return relinked(value, request.upstream_url, request.mirror_url, url_keys_only=True)


def _invalid(message: str) -> MirrorAnswer:
    """GitHub's 422 for a parameter value it (or the mirror) does not accept."""
    return MirrorAnswer(error(422, message), status=422)


def _positive(query: Mapping[str, str], name: str, default: int) -> int:
    """A positive integer parameter; GitHub ignores a missing or unusable one. Only ASCII digits
    (`str.isdigit` admits "²", which `int` refuses), and a number longer than 20 digits (which
    `int` may refuse too) is past the end of any list all the same."""
    digits = query.get(name, "").strip().lstrip("0")
    if not (digits.isascii() and digits.isdigit()):
        return default
    return int(digits) if len(digits) <= 20 else 10**20


def _link(request: MirrorRequest, path: str, page: int, rel: str) -> str:
    params = [(k, v) for k, v in request.query.items() if k != "page"]
    query = urlencode([*params, ("page", str(page))])
    return f'<{request.mirror_url}{path}?{query}>; rel="{rel}"'


def _paged(request: MirrorRequest, path: str, items: list[Any]) -> MirrorAnswer:
    """One page of `items` as GitHub answers a list: `per_page` (default 30, at most 100) and
    `page`, and a `Link` header with prev/next/last/first into the mirror."""
    per_page = min(_positive(request.query, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
    page = _positive(request.query, "page", 1)
    last = max(1, math.ceil(len(items) / per_page))
    links = []
    if page > 1:
        links.append(_link(request, path, min(page - 1, last), "prev"))
    if page < last:
        links += [_link(request, path, page + 1, "next"), _link(request, path, last, "last")]
    if page > 1:
        links.append(_link(request, path, 1, "first"))
    body = _rewritten(request, items[(page - 1) * per_page : page * per_page])
    return MirrorAnswer(body, {"Link": ", ".join(links)} if links else {})


def _segment(value: str) -> str:
    return quote(value, safe="")


async def _repo(request: MirrorRequest) -> MirrorAnswer:
    key = f"{request.params['owner']}/{request.params['repo']}"
    return MirrorAnswer(_rewritten(request, await request.read("repo", key)))


async def _collaborators(request: MirrorRequest) -> MirrorAnswer:
    """GET /repos/{owner}/{repo}/collaborators: the snapshot holds every collaborator
    (affiliation all) with permissions, so `permission` filters it; other affiliations are not
    in it."""
    affiliation = request.query.get("affiliation", "all")
    permission = request.query.get("permission")
    if affiliation != "all":
        return _invalid(
            f"the mirror serves affiliation=all only (the snapshot of every collaborator), "
            f"not {affiliation[:40]!r}"
        )
    if permission is not None and permission not in PERMISSIONS:
        return _invalid("Validation Failed")
    owner, repo = request.params["owner"], request.params["repo"]
    users = await request.read("repo_collaborators", f"{owner}/{repo}")
    if permission is not None:
        users = [u for u in users if (u.get("permissions") or {}).get(permission) is True]
    return _paged(request, f"/repos/{_segment(owner)}/{_segment(repo)}/collaborators", users)


async def _user(request: MirrorRequest) -> MirrorAnswer:
    return MirrorAnswer(_rewritten(request, await request.read("user", request.params["login"])))


async def _org(request: MirrorRequest) -> MirrorAnswer:
    return MirrorAnswer(_rewritten(request, await request.read("org", request.params["org"])))


async def _members(request: MirrorRequest) -> MirrorAnswer:
    """GET /orgs/{org}/members: the snapshot holds every member, so only `filter=all` and
    `role=all` (the defaults) can be answered."""
    for name in ("filter", "role"):
        value = request.query.get(name, "all")
        if value != "all":
            return _invalid(
                f"the mirror serves {name}=all only (the snapshot of every member), "
                f"not {value[:40]!r}"
            )
    org = request.params["org"]
    members = await request.read("org_members", org)
    return _paged(request, f"/orgs/{_segment(org)}/members", members)


MIRROR = Mirror(
    routes=(
        MirrorRoute(
            rf"/repos/(?P<owner>{SEGMENT})/(?P<repo>{SEGMENT})/collaborators",
            "/repos/{owner}/{repo}/collaborators",
            _collaborators,
        ),
        MirrorRoute(
            rf"/repos/(?P<owner>{SEGMENT})/(?P<repo>{SEGMENT})", "/repos/{owner}/{repo}", _repo
        ),
        MirrorRoute(rf"/users/(?P<login>{SEGMENT})", "/users/{login}", _user),
        MirrorRoute(rf"/orgs/(?P<org>{SEGMENT})/members", "/orgs/{org}/members", _members),
        MirrorRoute(rf"/orgs/(?P<org>{SEGMENT})", "/orgs/{org}", _org),
    ),
    token=token,
    error=error,
)
