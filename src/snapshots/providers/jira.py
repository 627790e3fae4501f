"""Jira (Cloud and Server/DC): the `jira` library on the gated requests adapter, and its datasets."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import jira
import requests

from snapshots.config import BudgetLimit, ProviderSettings
from snapshots.errors import SnapshotsError
from snapshots.providers.base import (
    DatasetDefinition,
    FetchContext,
    JSONValue,
    KeyFormat,
    ProviderDefinition,
    library_failure,
)
from snapshots.providers.transport import GatedRequestsAdapter, UpstreamGate

PROJECT_KEY = KeyFormat(
    pattern=r"[A-Z][A-Z0-9_]{0,49}",
    description="a Jira project key (an upper-case letter, then upper-case letters, digits or _)",
    example="PRJ1",
)
DEFAULT_FIELDS = (
    "summary",
    "status",
    "assignee",
    "reporter",
    "issuetype",
    "priority",
    "created",
    "updated",
)


def deployment_of(settings: ProviderSettings) -> str:
    """`cloud` or `server`: as configured, else guessed from the host (Atlassian Cloud sites)."""
    configured = settings.options.get("deployment")
    if isinstance(configured, str):
        return configured
    host = urlsplit(settings.base_url or "").hostname or ""
    return "cloud" if host.endswith(".atlassian.net") else "server"


def check_settings(settings: ProviderSettings) -> str | None:
    """Jira Cloud API tokens only work with the account's email (HTTP Basic)."""
    if deployment_of(settings) == "cloud" and not settings.options.get("email"):
        return "email: required for Jira Cloud (API tokens authenticate with the account email)"
    return None


def make_client(settings: ProviderSettings, gate: UpstreamGate) -> Any:
    """The jira client on the gated adapter: its retries off, a timeout set (it has none by default).

    Cloud API tokens authenticate as HTTP Basic with the account email; Server/DC personal
    access tokens as a Bearer token.
    """
    if settings.token is None or settings.base_url is None:
        raise ValueError("make_client needs a resolved base_url and a token")
    email = settings.options.get("email")
    auth: dict[str, Any] = (
        {"basic_auth": (email, settings.token.reveal())}
        if email
        else {"token_auth": settings.token.reveal()}
    )
    client = jira.JIRA(
        server=settings.base_url,
        options={"rest_api_version": "2"},
        get_server_info=False,
        max_retries=0,
        timeout=settings.timeout_seconds,
        **auth,
    )
    # Without a serverInfo request the library does not know it talks to Cloud, and its
    # Cloud-only methods (enhanced_search_issues) would return None.
    client.deploymentType = "Cloud" if deployment_of(settings) == "cloud" else "Server"
    adapter = GatedRequestsAdapter(gate, settings.timeout_seconds)
    client._session.mount("https://", adapter)
    client._session.mount("http://", adapter)
    return client


def _failure(exc: Exception, what: str) -> SnapshotsError:
    status = getattr(exc, "status_code", None) if isinstance(exc, jira.JIRAError) else None
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


def fetch_project_issues(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """Every issue of project `key` (all pages): `/search/jql` with page tokens on Cloud,
    `/search` with startAt on Server/DC."""
    jql = project_jql(key, ctx.options.get("jql"))
    fields = list(ctx.options.get("fields") or DEFAULT_FIELDS)
    what = f"issues of project {key}"
    if client.deploymentType == "Cloud":
        issues = _call(what, client.enhanced_search_issues, jql, maxResults=0, fields=fields)
    else:
        issues = _call(what, client.search_issues, jql, maxResults=False, fields=fields)
    return [issue.raw for issue in issues]


def fetch_project(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """The project object (GET /rest/api/2/project/{key})."""
    return _call(f"project {key}", client.project, key).raw


PROVIDER = ProviderDefinition(
    name="jira",
    default_base_url="https://your-site.atlassian.net",
    # Jira Cloud's limits are cost-based and undisclosed; one request a second stays well clear.
    default_budget=BudgetLimit(1, 1.0),
    make_client=make_client,
    options=frozenset({"email", "deployment"}),
    check_settings=check_settings,
    datasets=(
        DatasetDefinition(
            name="jira.project_issues",
            provider="jira",
            key_format=PROJECT_KEY,
            default_ttl_seconds=60.0,
            fetch=fetch_project_issues,
            description="every issue of a project (optionally narrowed by `jql`, with `fields`)",
            options=frozenset({"jql", "fields"}),
        ),
        DatasetDefinition(
            name="jira.project",
            provider="jira",
            key_format=PROJECT_KEY,
            default_ttl_seconds=3600.0,
            fetch=fetch_project,
            description="a project's settings, lead and issue types",
        ),
    ),
)
