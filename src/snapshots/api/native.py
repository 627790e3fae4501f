"""Routes in the shapes integrations already call, returning the bare upstream data.

Freshness travels in the headers (ETag, Last-Modified, Age, Cache-Control, X-Snapshot-Stale),
so an integration moving off a direct API call changes only its base URL and token.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.types import ASGIApp

from snapshots.api.schemas import ERROR_RESPONSES
from snapshots.api.serving import SnapshotReader


async def _bare(
    request: Request[Any, Any, State],
    reader: SnapshotReader,
    dataset: str,
    key: str,
) -> ASGIApp:
    entry, how = await reader.entry(dataset, key, None)
    return reader.respond(request, entry, how, body="data")


@get(
    "/api/v1/pagerduty/schedules/{schedule_id:str}/users",
    tags=["integrations"],
    responses=ERROR_RESPONSES,
    opt={"role": "reader"},
)
async def pagerduty_schedule_users(
    request: Request[Any, Any, State],
    reader: NamedDependency[SnapshotReader],
    schedule_id: FromPath[str],
) -> ASGIApp:
    """Users on call in a schedule (`pagerduty.schedule_users`), as a JSON list."""
    return await _bare(request, reader, "pagerduty.schedule_users", schedule_id)


@get(
    "/api/v1/pagerduty/escalation_policies/{policy_id:str}",
    tags=["integrations"],
    responses=ERROR_RESPONSES,
    opt={"role": "reader"},
)
async def pagerduty_escalation_policy(
    request: Request[Any, Any, State],
    reader: NamedDependency[SnapshotReader],
    policy_id: FromPath[str],
) -> ASGIApp:
    """An escalation policy (`pagerduty.escalation_policy`)."""
    return await _bare(request, reader, "pagerduty.escalation_policy", policy_id)


@get(
    "/api/v1/github/repos/{owner:str}/{repo:str}/collaborators",
    tags=["integrations"],
    responses=ERROR_RESPONSES,
    opt={"role": "reader"},
)
async def github_collaborators(
    request: Request[Any, Any, State],
    reader: NamedDependency[SnapshotReader],
    owner: FromPath[str],
    repo: FromPath[str],
) -> ASGIApp:
    """Collaborators of a repository with permissions (`github.repo_collaborators`)."""
    return await _bare(request, reader, "github.repo_collaborators", f"{owner}/{repo}")


@get(
    "/api/v1/github/repos/{owner:str}/{repo:str}",
    tags=["integrations"],
    responses=ERROR_RESPONSES,
    opt={"role": "reader"},
)
async def github_repo(
    request: Request[Any, Any, State],
    reader: NamedDependency[SnapshotReader],
    owner: FromPath[str],
    repo: FromPath[str],
) -> ASGIApp:
    """A repository (`github.repo`)."""
    return await _bare(request, reader, "github.repo", f"{owner}/{repo}")


@get(
    "/api/v1/jira/projects/{project:str}",
    tags=["integrations"],
    responses=ERROR_RESPONSES,
    opt={"role": "reader"},
)
async def jira_project(
    request: Request[Any, Any, State],
    reader: NamedDependency[SnapshotReader],
    project: FromPath[str],
) -> ASGIApp:
    """A project (`jira.project`)."""
    return await _bare(request, reader, "jira.project", project)


@get(
    "/api/v1/jira/projects/{project:str}/issues",
    tags=["integrations"],
    responses=ERROR_RESPONSES,
    opt={"role": "reader"},
)
async def jira_project_issues(
    request: Request[Any, Any, State],
    reader: NamedDependency[SnapshotReader],
    project: FromPath[str],
) -> ASGIApp:
    """Every issue of a project (`jira.project_issues`)."""
    return await _bare(request, reader, "jira.project_issues", project)


ROUTES = [
    pagerduty_schedule_users,
    pagerduty_escalation_policy,
    github_collaborators,
    github_repo,
    jira_project,
    jira_project_issues,
]
