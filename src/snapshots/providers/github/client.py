"""PyGithub on the gated requests adapter of its own provider instance, and GitHub's throttle
headers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import github
import requests
from github.Requester import HTTPRequestsConnectionClass, HTTPSRequestsConnectionClass

from snapshots.errors import UpstreamError
from snapshots.providers.github.settings import GithubSettings
from snapshots.providers.throttle import Throttle, number, retry_after
from snapshots.providers.transport import GatedRequestsAdapter, UpstreamGate


class _Refused(requests.adapters.BaseAdapter):
    """Where a request to any other host goes: nowhere (no budget covers it)."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        raise UpstreamError(
            f"no provider owns {urlsplit(request.url or '').hostname}: configure one"
        )

    def close(self) -> None:
        pass


def _connection_classes(
    adapter: GatedRequestsAdapter, origin: tuple[str, str, int]
) -> tuple[type[HTTPRequestsConnectionClass], type[HTTPSRequestsConnectionClass]]:
    """PyGithub connection classes that mount this client's gated adapter for its own origin
    and refuse every other host."""

    def mount(session: requests.Session, scheme: str, host: str, port: int) -> None:
        own = (scheme, host, port) == origin
        session.mount(f"{scheme}://", adapter if own else _Refused())

    class GatedHTTPConnection(HTTPRequestsConnectionClass):
        def __init__(self, host: str, port: int | None = None, **kwargs: Any) -> None:
            super().__init__(host, port, **kwargs)
            mount(self.session, "http", host, self.port)

        def close(self) -> None:
            pass  # the adapter (and its pool) belongs to the client; it closes it

    class GatedHTTPSConnection(HTTPSRequestsConnectionClass):
        def __init__(self, host: str, port: int | None = None, **kwargs: Any) -> None:
            super().__init__(host, port, **kwargs)
            mount(self.session, "https", host, self.port)

        def close(self) -> None:
            pass

    return GatedHTTPConnection, GatedHTTPSConnection


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme or "https"
    return scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 80)


class _GithubClient(github.Github):
    """PyGithub's client whose requests go through its own gated adapter, released on close.

    PyGithub's only public hook for the transport (`Requester.injectConnectionClasses`) is
    process-wide, so two GitHub instances would share one adapter and budget. The requester
    picks its connection class from the class attribute at construction; setting it on this
    client's requester (and the copies `withAuth`/`withLazy` make of it) keeps each instance on
    its own gate.
    """

    def __init__(
        self, adapter: GatedRequestsAdapter, origin: tuple[str, str, int], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._adapter = adapter
        http_class, https_class = _connection_classes(adapter, origin)
        requester = self.requester
        requester._Requester__httpConnectionClass = http_class  # type: ignore[attr-defined]
        requester._Requester__httpsConnectionClass = https_class  # type: ignore[attr-defined]
        requester._Requester__connectionClass = (  # type: ignore[attr-defined]
            https_class if origin[0] == "https" else http_class
        )

    def close(self) -> None:
        super().close()
        self._adapter.close()


def make_client(settings: GithubSettings, gate: UpstreamGate) -> Any:
    """PyGithub on the gated adapter; its own retries and request spacing are off (the gate decides)."""
    if settings.token is None or settings.base_url is None:
        raise ValueError("make_client needs a resolved base_url and a token")
    adapter = GatedRequestsAdapter(gate, float(settings.timeout), conditional=True)
    return _GithubClient(
        adapter,
        _origin(settings.base_url),
        base_url=settings.base_url,
        auth=github.Auth.Token(settings.token.reveal()),
        timeout=math.ceil(settings.timeout),
        retry=0,
        per_page=settings.page_size,
        seconds_between_requests=None,
        seconds_between_writes=None,
        lazy=True,
    )


def _spent(headers: Mapping[str, str], now_epoch: float) -> float | None:
    """Seconds until GitHub's quota resets, when `X-RateLimit-Remaining` says it is spent."""
    if number(headers.get("x-ratelimit-remaining")) != 0:
        return None
    reset = number(headers.get("x-ratelimit-reset"))
    return None if reset is None else max(reset - now_epoch, 0.0) + 1.0


def read_throttle(status: int, headers: Mapping[str, str], now_epoch: float) -> Throttle | None:
    """429, or 403 with no quota left, is a refusal; a success that spent the last request of
    the quota pauses until `X-RateLimit-Reset`."""
    reset = _spent(headers, now_epoch)
    if status == 429 or (status == 403 and reset is not None):
        wait = retry_after(headers, now_epoch)
        return Throttle(True, wait if wait is not None else reset, f"upstream answered {status}")
    if reset is not None:
        return Throttle(False, reset, "X-RateLimit-Remaining: 0")
    return None
