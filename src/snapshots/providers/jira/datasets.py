"""Jira's datasets: a project's issues (every page, checked against what the pagination announced)
and projects."""

from __future__ import annotations

from typing import Any

import jira
import msgspec
import requests

from snapshots.errors import SnapshotsError, UpstreamError, UpstreamNotFound
from snapshots.providers import mirror_any
from snapshots.providers.fetching import MAX_PAGES, incomplete, library_failure
from snapshots.providers.jira.raw import raw_get
from snapshots.providers.jira.settings import ProjectIssuesOptions
from snapshots.providers.kind import DatasetDefinition, FetchContext, JSONValue, KeyFormat

PROJECT_KEY = KeyFormat(
    pattern=r"[A-Z][A-Z0-9_]{0,49}",
    description="a Jira project key (an upper-case letter, then upper-case letters, digits or _)",
    example="PRJ1",
)
NO_PROJECT = "does not exist for the field 'project'"  # Jira's search, for an unknown project
PAGE_SIZE = 100  # issues asked for per search page (Jira may answer fewer, and says so)


class Issue(msgspec.Struct):
    """What a stored issue must have (the rest of the object is kept as sent)."""

    key: str


class Project(msgspec.Struct):
    key: str


def _failure(exc: Exception, what: str) -> SnapshotsError:
    status = getattr(exc, "status_code", None) if isinstance(exc, jira.JIRAError) else None
    if status == 400 and NO_PROJECT in str(getattr(exc, "text", "")):
        # Jira's search answers a project that does not exist with a 400, not a 404: it is
        # still a key with nothing behind it (answered as not found, not as a failure).
        return UpstreamNotFound(f"jira has no such project ({what})")
    return library_failure("jira", what, exc, status if isinstance(status, int) else None)


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except (jira.JIRAError, requests.RequestException, SnapshotsError, ValueError) as exc:
        raise _failure(exc, what) from None


def project_jql(key: str, extra: str | None) -> str:
    """`project = KEY`, narrowed by the dataset's `jql` filter, in a stable order."""
    jql = f'project = "{key}"'
    if extra:
        jql += f" AND ({extra})"
    return jql + " ORDER BY key ASC"


def _page_issues(body: Any, what: str) -> list[dict[str, Any]]:
    issues = body.get("issues") if isinstance(body, dict) else None
    if not isinstance(issues, list) or not all(isinstance(i, dict) for i in issues):
        raise UpstreamError(f"jira sent an unexpected body for {what}: no list of issues")
    return issues


def _count(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _server_issues(
    client: Any, jql: str, fields: list[str], what: str, label: str
) -> list[dict[str, Any]]:
    """Every page of `/search` by startAt, checked against the `total` each page announces: an
    empty or short page before it, or a total that drops while paging, fails the fetch."""
    issues: list[dict[str, Any]] = []
    total: int | None = None
    for _ in range(MAX_PAGES):
        start = len(issues)
        body = _call(
            what,
            client.search_issues,
            jql,
            startAt=start,
            maxResults=PAGE_SIZE,
            fields=list(fields),  # the library rewrites names to ids in place
            json_result=True,
        )
        page = _page_issues(body, what)
        announced = _count(body, "total")
        if total is not None and announced is not None and announced < total:
            raise incomplete(
                label, f"total dropped from {total} to {announced} at startAt={start} while paging"
            )
        total = announced
        size = _count(body, "maxResults") or PAGE_SIZE
        issues.extend(page)
        if total is None:  # nothing to check against: a short page is the last
            if len(page) < size:
                return issues
        elif len(issues) >= total:
            return issues
        elif not page:
            raise incomplete(
                label,
                f"page at startAt={start} came back empty though total is {total},"
                f" after {start} issues",
            )
        elif len(page) < size:
            raise incomplete(
                label,
                f"page at startAt={start} came back with {len(page)} of maxResults {size} issues"
                f" though total is {total}, after {len(issues)} issues",
            )
    raise UpstreamError(f"{what}: more than {MAX_PAGES} pages; narrow the jql")


def _cloud_issues(
    client: Any, jql: str, fields: list[str], what: str, label: str
) -> list[dict[str, Any]]:
    """Every page of `/search/jql` by nextPageToken, until a page says isLast=true (or, in
    answers without isLast, carries no token). A page that is not last must carry a token and
    issues; Cloud may send fewer issues than maxResults on any page, so short pages are fine."""
    issues: list[dict[str, Any]] = []
    token: str | None = None
    for number in range(1, MAX_PAGES + 1):
        body = _call(
            what,
            client.enhanced_search_issues,
            jql,
            nextPageToken=token,
            maxResults=PAGE_SIZE,
            fields=list(fields),
            json_result=True,
        )
        page = _page_issues(body, what)
        issues.extend(page)
        is_last = body.get("isLast")
        next_token = body.get("nextPageToken")
        token = next_token if isinstance(next_token, str) and next_token else None
        if is_last is True:
            return issues
        if not page and (is_last is False or token is not None):
            said = "isLast=false" if is_last is False else "a nextPageToken follows"
            raise incomplete(
                label, f"page {number} came back empty though {said}, after {len(issues)} issues"
            )
        if token is None:
            if is_last is False:
                raise incomplete(
                    label,
                    f"page {number} says isLast=false but carries no nextPageToken,"
                    f" after {len(issues)} issues",
                )
            return issues
    raise UpstreamError(f"{what}: more than {MAX_PAGES} pages; narrow the jql")


def _field_aliases(client: Any, fields: list[str]) -> dict[str, str]:
    """Field id -> the name the dataset asked for, where they differ. The library searches by
    id; its issue lists copy each such field back under the asked name, and so do we (with raw
    JSON pages it does not). Its name -> id map is loaded once per client, by the search."""
    ids: dict[str, str] = client._fields_cache
    return {ids[name]: name for name in fields if name in ids and ids[name] != name}


def fetch_project_issues(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """Every issue of project `key` (all pages): `/search/jql` with page tokens on Cloud,
    `/search` with startAt on Server/DC; a list whose pagination does not end as it announced
    is refused (see `_server_issues`, `_cloud_issues`)."""
    options: ProjectIssuesOptions = ctx.options
    jql = project_jql(key, options.jql)
    fields = list(options.fields)
    what = f"issues of project {key}"
    label = f"project {key} issues"
    if client.deploymentType == "Cloud":
        issues = _cloud_issues(client, jql, fields, what, label)
    else:
        issues = _server_issues(client, jql, fields, what, label)
    aliases = _call(what, _field_aliases, client, fields)
    for issue in issues:
        values = issue.get("fields")
        if isinstance(values, dict):
            for field_id, name in aliases.items():
                if field_id in values:
                    values[name] = values[field_id]
    return issues


def fetch_project(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """The project object (GET /rest/api/2/project/{key})."""
    return _call(f"project {key}", client.project, key).raw


DATASETS = (
    DatasetDefinition(
        name="project_issues",
        key_format=PROJECT_KEY,
        default_ttl_seconds=60.0,
        fetch=fetch_project_issues,
        description="every issue of a project (optionally narrowed by `jql`, with `fields`)",
        options=ProjectIssuesOptions,
        schema=list[Issue],
    ),
    DatasetDefinition(
        name="project",
        key_format=PROJECT_KEY,
        default_ttl_seconds=3600.0,
        fetch=fetch_project,
        description="a project's settings, lead and issue types",
        schema=Project,
    ),
    mirror_any.definition(raw_get),
)
