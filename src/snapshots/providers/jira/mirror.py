"""Jira's REST API shapes under `/mirror/<instance>`, from snapshots: what the `jira` library reads,
so an integration changes only its server URL and token.

Paths, under `/rest/api/2`, `/rest/api/3` and `/rest/api/latest`:

- `project/{key}`: the `project` snapshot (by key, any case; not by numeric id).
- `search` (Server/DC: `startAt`, `maxResults`, `total`) and `search/jql` (Cloud: `nextPageToken`,
  `isLast`): pages of the `project_issues` snapshot of the whole list. Only the JQL that snapshot
  answers exactly is accepted: `project = KEY` (optionally `ORDER BY key [ASC]`), or, when the
  dataset narrows with `jql`, the dataset's own `project = "KEY" AND (<jql>) ORDER BY key ASC`.
  `fields` must be named and among the dataset's `fields`; `expand` and `properties` are refused.
  On `/rest/api/3`, rich-text fields (description, environment, comment, worklog, custom fields)
  are refused: the snapshot holds them in version 2's shape, not as Atlassian documents.
- `serverInfo` (what the library reads when it starts): from configuration, the instance's
  `deployment` (`Server` or `Cloud`) and a fixed version; `field`: the dataset's `fields`, each as
  its own id and name, so the library's name-to-id translation leaves them as they are.

Links into the upstream API (`self`) are rewritten to the mirror. Anything else is a 400 in Jira's
error shape saying what the mirror answers, rather than an answer that differs from Jira's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

from snapshots.errors import MalformedKey, UpstreamNotFound
from snapshots.providers.jira.client import deployment_of
from snapshots.providers.jira.datasets import PROJECT_KEY
from snapshots.providers.jira.settings import ProjectIssuesOptions
from snapshots.providers.kind import Mirror, MirrorAnswer, MirrorRequest, MirrorRoute
from snapshots.providers.links import relinked

API = r"/rest/api/(?P<version>2|3|latest)"
STORED_VERSION = "2"  # the datasets read /rest/api/2: the version their links and shapes are in
DEFAULT_MAX_RESULTS = 50
MAX_RESULTS = 100
JAVA_INT = 2**31 - 1  # the largest startAt / maxResults Jira parses
# Fields whose version-3 shape (an Atlassian document) differs from the version-2 one stored.
RICH_TEXT = frozenset({"description", "environment", "comment", "worklog"})
SERVER_VERSION = (9, 12, 0)  # reported by serverInfo for Server/DC (the library only compares it)
CLOUD_VERSION = (1001, 0, 0)  # what Jira Cloud itself reports
_VALUE = r"""(?:"[^"]*"|'[^']*'|[A-Za-z0-9_]+)"""
_ORDER = r"(?:\s+ORDER\s+BY\s+key(?:\s+ASC)?)?"


class Refused(ValueError):
    """A request the snapshot cannot answer exactly; the message is the 400's."""


def token(authorization: str) -> str | None:
    """`Basic base64(user:<token>)` (the user part ignored) or `Bearer <token>`."""
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip() or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(rest.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, colon, secret = decoded.partition(":")
    return secret if colon and secret else None


def error(status: int, message: str) -> Any:
    """Jira's error body."""
    return {"errorMessages": [message], "errors": {}}


def _refusal(message: str, status: int = 400) -> MirrorAnswer:
    return MirrorAnswer(error(status, message), status=status)


def _in_mirror(request: MirrorRequest, body: Any) -> Any:
    """Links into the upstream API, as stored, pointing at the same API version of the mirror."""
    if not request.upstream_url:
        return body
    old = f"{request.upstream_url}/rest/api/{STORED_VERSION}/"
    new = f"{request.mirror_url}/rest/api/{request.params['version']}/"
    return relinked(body, old, new)


async def _server_info(request: MirrorRequest) -> MirrorAnswer:
    """serverInfo from configuration: the deployment type (the library switches between Server
    and Cloud search on it) and a version it can compare."""
    cloud = deployment_of(request.settings) == "cloud"
    numbers = CLOUD_VERSION if cloud else SERVER_VERSION
    version = "1001.0.0-SNAPSHOT" if cloud else ".".join(map(str, numbers))
    return MirrorAnswer(
        {
            "baseUrl": request.mirror_url,
            "version": version,
            "versionNumbers": list(numbers),
            "deploymentType": "Cloud" if cloud else "Server",
            "serverTitle": f"snapshots mirror of {request.instance}",
        }
    )


async def _fields(request: MirrorRequest) -> MirrorAnswer:
    """field: the fields `project_issues` keeps, each its own id and clause name."""
    options: ProjectIssuesOptions | None = request.options("project_issues")
    names = options.fields if options is not None else ()
    return MirrorAnswer(
        [
            {
                "id": name,
                "key": name,
                "name": name,
                "custom": name.startswith("customfield_"),
                "navigable": True,
                "searchable": True,
                "clauseNames": [name],
            }
            for name in names
        ]
    )


async def _project(request: MirrorRequest) -> MirrorAnswer:
    asked = request.params["key"]
    if asked.isdigit():
        return _refusal(
            f"The mirror finds projects by key, not by id: ask for project/KEY, not {asked}."
        )
    key = asked.upper()
    try:
        PROJECT_KEY.check("project", key)
        body = await request.read("project", key)
    except (MalformedKey, UpstreamNotFound):
        return _refusal(f"No project could be found with key '{asked}'.", 404)
    return MirrorAnswer(_in_mirror(request, body))


def _unquote(value: str) -> str:
    return value[1:-1] if value[:1] in "\"'" and value[-1:] == value[:1] else value


def _answerable(options: ProjectIssuesOptions) -> str:
    if options.jql:
        return f'project = "KEY" AND ({options.jql}) ORDER BY key ASC (the dataset\'s own query)'
    return "project = KEY, optionally followed by ORDER BY key [ASC]"


def _project_of(jql: str, options: ProjectIssuesOptions) -> str:
    """The project key of a JQL query the snapshot answers exactly, or Refused."""
    narrowed = rf"\s+AND\s+\((?-i:{re.escape(options.jql)})\)" if options.jql else ""
    match = re.fullmatch(
        rf"\s*project\s*=\s*(?P<key>{_VALUE}){narrowed}{_ORDER}\s*", jql, re.IGNORECASE
    )
    if match is None or _unquote(match["key"]).isdigit():
        raise Refused(
            f"The mirror answers only the JQL {_answerable(options)}, where KEY is a project key;"
            f" not {jql[:200]!r}."
        )
    return _unquote(match["key"]).upper()


def _asked_fields(request: MirrorRequest, options: ProjectIssuesOptions) -> list[str]:
    """The fields asked for, when the snapshot keeps them all (in this API version's shape)."""
    asked = [
        name.strip()
        for value in request.queries.get("fields", ())
        for name in value.split(",")
        if name.strip()
    ]
    kept = ", ".join(options.fields)
    if not asked:
        raise Refused(f"The mirror answers searches that name their fields, among: {kept}.")
    missing = [name for name in asked if name not in options.fields]
    if missing:
        raise Refused(
            f"The mirror answers only the fields its snapshot keeps ({kept}), not"
            f" {', '.join(missing)[:200]}."
        )
    if request.params["version"] == "3":
        rich = [n for n in asked if n in RICH_TEXT or n.startswith("customfield_")]
        if rich:
            raise Refused(
                f"The mirror answers {', '.join(rich)} only on /rest/api/2: it keeps them in"
                " version 2's shape, not as Atlassian documents."
            )
    for name in ("expand", "properties", "reconcileIssues"):
        if any(v.strip() for v in request.queries.get(name, ())):
            raise Refused(f"The mirror does not answer searches with {name}.")
    if request.query.get("fieldsByKeys", "false").lower() == "true":
        raise Refused("The mirror does not answer searches with fieldsByKeys.")
    return asked


def _count(request: MirrorRequest, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    # ASCII digits only (`str.isdigit` admits "²", which `int` refuses), within Java's int as
    # Jira parses them (and short enough for `int`).
    digits = value.lstrip("0") or "0"
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 10 or int(digits) > JAVA_INT:
        raise Refused(f"The '{name}' parameter must be a non-negative integer, not {value[:40]!r}.")
    return int(digits)


async def _issues(request: MirrorRequest) -> tuple[list[dict[str, Any]], list[str]] | MirrorAnswer:
    """The whole list the search selects, with the fields asked for, or Jira's error."""
    options: ProjectIssuesOptions | None = request.options("project_issues")
    if options is None:
        options = ProjectIssuesOptions()  # the read refuses it: the dataset is not configured
    try:
        key = _project_of(request.query.get("jql", ""), options)
        fields = _asked_fields(request, options)
        PROJECT_KEY.check("project", key)
        issues = await request.read("project_issues", key)
    except Refused as exc:
        return _refusal(str(exc))
    except (MalformedKey, UpstreamNotFound):
        return _refusal(f"The value '{key}' does not exist for the field 'project'.")
    wanted = set(fields)
    selected = [
        {**issue, "fields": {k: v for k, v in issue["fields"].items() if k in wanted}}
        if isinstance(issue.get("fields"), dict)
        else issue
        for issue in issues
    ]
    return _in_mirror(request, selected), [str(issue.get("key")) for issue in issues]


async def _search(request: MirrorRequest) -> MirrorAnswer:
    """Server/DC search: a page by startAt, maxResults (at most 100), with the total."""
    try:
        start = _count(request, "startAt") or 0
        size = _count(request, "maxResults")
    except Refused as exc:
        return _refusal(str(exc))
    found = await _issues(request)
    if isinstance(found, MirrorAnswer):
        return found
    issues, _ = found
    size = min(DEFAULT_MAX_RESULTS if size is None else size, MAX_RESULTS)
    body = {"expand": "schema,names", "startAt": start, "maxResults": size, "total": len(issues)}
    return MirrorAnswer({**body, "issues": issues[start : start + size]})


def _digest(keys: list[str]) -> str:
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def _page_token(offset: int, keys: list[str]) -> str:
    """A token for the page at `offset` of this list: a list whose keys changed since refuses it
    (as Jira does an expired token), rather than skipping or repeating issues."""
    return base64.urlsafe_b64encode(f"mirror:{offset}:{_digest(keys)}".encode()).decode()


def _token_offset(token: str | None, keys: list[str]) -> int | None:
    if not token:
        return 0
    try:
        kind, offset, digest = base64.urlsafe_b64decode(token.encode()).decode().split(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    ascii_digits = offset.isascii() and offset.isdigit() and len(offset) <= 10  # "²" isdigit()
    if kind != "mirror" or not ascii_digits or digest != _digest(keys):
        return None
    return int(offset)


async def _search_jql(request: MirrorRequest) -> MirrorAnswer:
    """Cloud search/jql: a page by nextPageToken, maxResults (1 to 100), with isLast."""
    try:
        size = max(1, min(_count(request, "maxResults") or DEFAULT_MAX_RESULTS, MAX_RESULTS))
    except Refused as exc:
        return _refusal(str(exc))
    found = await _issues(request)
    if isinstance(found, MirrorAnswer):
        return found
    issues, keys = found
    start = _token_offset(request.query.get("nextPageToken"), keys)
    if start is None:
        return _refusal("The provided next page token is invalid or expired.")
    page = issues[start : start + size]
    if start + size >= len(issues):
        return MirrorAnswer({"issues": page, "isLast": True})
    following = _page_token(start + size, keys)
    return MirrorAnswer({"issues": page, "nextPageToken": following, "isLast": False})


MIRROR = Mirror(
    routes=(
        MirrorRoute(rf"{API}/serverInfo", "/rest/api/2/serverInfo", _server_info),
        MirrorRoute(rf"{API}/field", "/rest/api/2/field", _fields),
        MirrorRoute(rf"{API}/project/(?P<key>[^/]+)", "/rest/api/2/project/{key}", _project),
        MirrorRoute(rf"{API}/search", "/rest/api/2/search", _search),
        MirrorRoute(rf"{API}/search/jql", "/rest/api/3/search/jql", _search_jql),
    ),
    token=token,
    error=error,
)
