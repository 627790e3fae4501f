"""GitHub: PyGithub on the gated requests adapter, and its datasets (collaborators, repository)."""

from __future__ import annotations

import math
import threading
from typing import Any
from urllib.parse import urlsplit

import github
import requests
from github.Requester import HTTPRequestsConnectionClass, HTTPSRequestsConnectionClass, Requester

from snapshots.config import BudgetLimit, ProviderSettings
from snapshots.errors import SnapshotsError, UpstreamError
from snapshots.providers.base import (
    DatasetDefinition,
    FetchContext,
    JSONValue,
    KeyFormat,
    LinkPages,
    ProviderDefinition,
    library_failure,
)
from snapshots.providers.transport import GatedRequestsAdapter, UpstreamGate

REPO_KEY = KeyFormat(
    pattern=r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}",
    description="'owner/repo'",
    example="acme/repo-01",
)

# PyGithub opens its own requests.Session per connection and offers no per-client hook for the
# adapter; its public `Requester.injectConnectionClasses` lets us supply the connection classes.
# Ours mount the gated adapter of the provider that owns the host, so every PyGithub request in
# this process draws from a budget, and a host no provider owns is refused rather than sent.
_adapters: dict[tuple[str, str, int], GatedRequestsAdapter] = {}
_adapters_lock = threading.Lock()


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme or "https"
    return scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 80)


class _Refused(requests.adapters.BaseAdapter):
    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        raise UpstreamError(
            f"no provider owns {urlsplit(request.url or '').hostname}: configure one"
        )

    def close(self) -> None:
        pass


def _mount(session: requests.Session, scheme: str, host: str, port: int) -> None:
    with _adapters_lock:
        adapter = _adapters.get((scheme, host, port))
    session.mount(f"{scheme}://", adapter if adapter is not None else _Refused())


class _GatedHTTPSConnection(HTTPSRequestsConnectionClass):
    def __init__(self, host: str, port: int | None = None, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        _mount(self.session, "https", host, self.port)

    def close(self) -> None:
        pass  # the adapter (and its connection pool) is shared by the provider; it closes it


class _GatedHTTPConnection(HTTPRequestsConnectionClass):
    def __init__(self, host: str, port: int | None = None, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        _mount(self.session, "http", host, self.port)

    def close(self) -> None:
        pass


Requester.injectConnectionClasses(_GatedHTTPConnection, _GatedHTTPSConnection)


class _GithubClient(github.Github):
    """PyGithub's client that also releases its gated adapter when closed."""

    def __init__(
        self, origin: tuple[str, str, int], adapter: GatedRequestsAdapter, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._origin = origin
        self._adapter = adapter

    def close(self) -> None:
        super().close()
        with _adapters_lock:
            if _adapters.get(self._origin) is self._adapter:
                del _adapters[self._origin]
        self._adapter.close()


def make_client(settings: ProviderSettings, gate: UpstreamGate) -> Any:
    """PyGithub on the gated adapter; its own retries and request spacing are off (the gate decides)."""
    if settings.token is None or settings.base_url is None:
        raise ValueError("make_client needs a resolved base_url and a token")
    origin = _origin(settings.base_url)
    adapter = GatedRequestsAdapter(gate, settings.timeout_seconds, conditional=True)
    with _adapters_lock:
        _adapters[origin] = adapter
    return _GithubClient(
        origin,
        adapter,
        base_url=settings.base_url,
        auth=github.Auth.Token(settings.token.reveal()),
        timeout=math.ceil(settings.timeout_seconds),
        retry=0,
        per_page=int(settings.options.get("page_size", 100)),
        seconds_between_requests=None,
        seconds_between_writes=None,
        lazy=True,
    )


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
        pages = LinkPages(f"github.repo_collaborators {key}", per_page)
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


PROVIDER = ProviderDefinition(
    name="github",
    default_base_url="https://api.github.com",
    # GitHub allows 5,000 requests an hour per token; leave some for people using the same token.
    default_budget=BudgetLimit(4500, 3600.0),
    make_client=make_client,
    options=frozenset({"page_size"}),
    # Conditional requests answered 304 do not count against GitHub's rate limit.
    free_not_modified=True,
    datasets=(
        DatasetDefinition(
            name="github.repo_collaborators",
            provider="github",
            key_format=REPO_KEY,
            default_ttl_seconds=1800.0,
            fetch=fetch_repo_collaborators,
            description="collaborators of a repository with their permissions, all pages",
        ),
        DatasetDefinition(
            name="github.repo",
            provider="github",
            key_format=REPO_KEY,
            default_ttl_seconds=3600.0,
            fetch=fetch_repo,
            description="a repository's settings and counters",
        ),
    ),
)
