"""GitHub's datasets: repository collaborators (all pages, checked against Link), repositories,
users, organisations and their members (all pages, checked likewise)."""

from __future__ import annotations

from typing import Any

import github
import msgspec
import requests

from snapshots.errors import SnapshotsError, UpstreamError
from snapshots.providers import mirror_any
from snapshots.providers.fetching import LinkPages, library_failure
from snapshots.providers.github.raw import raw_get
from snapshots.providers.kind import DatasetDefinition, FetchContext, JSONValue, KeyFormat

REPO_KEY = KeyFormat(
    pattern=r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}",
    description="'owner/repo'",
    example="acme/repo-01",
)


LOGIN_KEY = KeyFormat(
    # GitHub logins: letters, digits and single hyphens, at most 39; apps' bots end in [bot].
    pattern=r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?",
    description="a GitHub login",
    example="octocat",
)
ORG_KEY = KeyFormat(
    pattern=r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})",
    description="an organisation's login",
    example="acme",
)


class Collaborator(msgspec.Struct):
    """What a stored collaborator must have (the rest of the object is kept as sent)."""

    login: str


class Account(msgspec.Struct):
    """A user or organisation as stored: its login and the API URL it is completed from (the
    rest of the object is kept as sent)."""

    login: str
    url: str


class Repository(msgspec.Struct):
    full_name: str


def _failure(exc: Exception, what: str) -> SnapshotsError:
    status = exc.status if isinstance(exc, github.GithubException) else None
    return library_failure("github", what, exc, status)


def _links(headers: dict[str, Any]) -> dict[str, str]:
    """rel -> URL of a response's `Link` header (PyGithub lower-cases header names)."""
    links = requests.utils.parse_header_links(str(headers.get("link", "")))
    return {str(link["rel"]): str(link["url"]) for link in links if "rel" in link and "url" in link}


def _all_pages(client: Any, url: str, what: str) -> list[dict[str, Any]]:
    """Every item of the list at `url`, all pages, each page checked against the Link that
    announced it.

    PyGithub's paginated list ends quietly at an empty page, whatever the Link header of the
    page before announced; so the pages are walked here, on PyGithub's requester (its auth,
    errors and the gated adapter). Items are kept as the list response sent them (`raw_data`
    of PyGithub's objects would complete them, one more request per item).
    """
    per_page = int(client.per_page)
    params: dict[str, Any] = {"per_page": per_page}
    pages = LinkPages(what, per_page)
    items: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url is not None:
        headers, data = client.requester.requestJsonAndCheck("GET", next_url, parameters=params)
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise UpstreamError(f"github sent an unexpected body for {what}: no list of users")
        items.extend(data)
        next_url = pages.page(next_url, len(data), _links(headers))
        params = {}  # the next link carries its own query
    return items


def fetch_repo_collaborators(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """Every collaborator of `owner/repo` with permissions and role, all pages."""
    what = f"repository {key} collaborators"
    try:
        # The client is lazy: get_repo builds the URL without fetching the repository.
        return _all_pages(client, f"{client.get_repo(key).url}/collaborators", what)
    except (github.GithubException, requests.RequestException, SnapshotsError, ValueError) as exc:
        raise _failure(exc, what) from None


def fetch_org_members(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """Every member of organisation `key` (GET /orgs/{org}/members), all pages."""
    what = f"organisation {key} members"
    try:
        # The client is lazy: get_organization builds the URL without fetching the org.
        return _all_pages(client, f"{client.get_organization(key).url}/members", what)
    except (github.GithubException, requests.RequestException, SnapshotsError, ValueError) as exc:
        raise _failure(exc, what) from None


def fetch_user(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """The profile of user (or organisation) `key` (GET /users/{login})."""
    what = f"user {key}"
    try:
        # lazy=True: a NamedUser whose raw_data completes it, exactly one GET /users/{login}.
        data: dict[str, Any] = client.get_user(key, lazy=True).raw_data
        return data
    except (github.GithubException, requests.RequestException, SnapshotsError, ValueError) as exc:
        raise _failure(exc, what) from None


def fetch_org(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """The organisation object of `key` (GET /orgs/{org})."""
    what = f"organisation {key}"
    try:
        # raw_data of a lazy organisation completes it: exactly one GET /orgs/{org}.
        data: dict[str, Any] = client.get_organization(key).raw_data
        return data
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
    DatasetDefinition(
        name="user",
        key_format=LOGIN_KEY,
        default_ttl_seconds=3600.0,
        fetch=fetch_user,
        description="a user's (or organisation's) profile, GET /users/{login}",
        schema=Account,
    ),
    DatasetDefinition(
        name="org",
        key_format=ORG_KEY,
        default_ttl_seconds=3600.0,
        fetch=fetch_org,
        description="an organisation, GET /orgs/{org}",
        schema=Account,
    ),
    DatasetDefinition(
        name="org_members",
        key_format=ORG_KEY,
        default_ttl_seconds=1800.0,
        fetch=fetch_org_members,
        description="members of an organisation, all pages",
        schema=list[Account],
    ),
    mirror_any.definition(raw_get),
)
