"""GitHub's datasets: repository collaborators (all pages, checked against Link) and repositories."""

from __future__ import annotations

from typing import Any

import github
import msgspec
import requests

from snapshots.errors import SnapshotsError, UpstreamError
from snapshots.providers.fetching import LinkPages, library_failure
from snapshots.providers.kind import DatasetDefinition, FetchContext, JSONValue, KeyFormat

REPO_KEY = KeyFormat(
    pattern=r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}",
    description="'owner/repo'",
    example="acme/repo-01",
)


class Collaborator(msgspec.Struct):
    """What a stored collaborator must have (the rest of the object is kept as sent)."""

    login: str


class Repository(msgspec.Struct):
    full_name: str


def _failure(exc: Exception, what: str) -> SnapshotsError:
    status = exc.status if isinstance(exc, github.GithubException) else None
    return library_failure("github", what, exc, status)


def _links(headers: dict[str, Any]) -> dict[str, str]:
    """rel -> URL of a response's `Link` header (PyGithub lower-cases header names)."""
    links = requests.utils.parse_header_links(str(headers.get("link", "")))
    return {str(link["rel"]): str(link["url"]) for link in links if "rel" in link and "url" in link}


def fetch_repo_collaborators(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """Every collaborator of `owner/repo` with permissions and role, all pages.

    PyGithub's paginated list ends quietly at an empty page, whatever the Link header of the
    page before announced; so the pages are walked here, on PyGithub's requester (its auth,
    errors and the gated adapter), and each is checked against the Link that announced it.
    """
    what = f"repository {key} collaborators"
    try:
        # The client is lazy: get_repo builds the URL without fetching the repository.
        url: str | None = f"{client.get_repo(key).url}/collaborators"
        per_page = int(client.per_page)
        params: dict[str, Any] = {"per_page": per_page}
        pages = LinkPages(what, per_page)
        users: list[dict[str, Any]] = []
        while url is not None:
            headers, data = client.requester.requestJsonAndCheck("GET", url, parameters=params)
            if not isinstance(data, list) or not all(isinstance(user, dict) for user in data):
                raise UpstreamError(f"github sent an unexpected body for {what}: no list of users")
            users.extend(data)
            url = pages.page(url, len(data), _links(headers))
            params = {}  # the next link carries its own query
        return users
    except (github.GithubException, requests.RequestException, SnapshotsError, ValueError) as exc:
        raise _failure(exc, what) from None


def fetch_repo(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """The repository object of `owner/repo` (GET /repos/{owner}/{repo})."""
    what = f"repository {key}"
    try:
        # raw_data of a lazy repository completes it: exactly one GET /repos/{owner}/{repo}.
        data: dict[str, Any] = client.get_repo(key).raw_data
        return data
    except (github.GithubException, requests.RequestException, SnapshotsError, ValueError) as exc:
        raise _failure(exc, what) from None


DATASETS = (
    DatasetDefinition(
        name="repo_collaborators",
        key_format=REPO_KEY,
        default_ttl_seconds=1800.0,
        fetch=fetch_repo_collaborators,
        description="collaborators of a repository with their permissions, all pages",
        schema=list[Collaborator],
    ),
    DatasetDefinition(
        name="repo",
        key_format=REPO_KEY,
        default_ttl_seconds=3600.0,
        fetch=fetch_repo,
        description="a repository's settings and counters",
        schema=Repository,
    ),
)
