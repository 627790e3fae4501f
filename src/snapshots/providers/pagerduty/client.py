"""The REST API v2 client from the `pagerduty` package on the gated transport, and PagerDuty's
throttle headers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pagerduty

from snapshots.logs import quiet_library
from snapshots.providers.pagerduty.settings import PagerDutySettings
from snapshots.providers.throttle import Throttle, number, retry_after
from snapshots.providers.transport import GatedHttpx2Transport, UpstreamGate

quiet_library("pagerduty")


class _PagerDutyClient(pagerduty.RestApiV2Client):
    """The library client, with two changes the gateway needs.

    - `url` accepts http:// as well as https://. The library's setter refuses anything but
      https://, yet operators point providers at mock and proxy upstreams (and tests at the
      simulator) over plain http on a trusted network. Overriding the property keeps the rest of
      the library untouched; the scheme is still validated.
    - Library retries are off: the gate under it retries and honours throttle signals, so the
      library must neither double the wait nor loop on 429 forever (its default).
    """

    # Seconds; the library infers int from its default, but httpx2 takes any float.
    timeout: float = 30.0  # type: ignore[assignment]
    max_network_attempts = 0
    # With `retry = {429: 1}` (set in make_client) and a negative attempt cap, the library's
    # retry branch returns the first 429 to us; with no entry it would retry 429 forever.
    max_http_attempts = -1

    @property
    def url(self) -> str:
        return str(self._url)

    @url.setter
    def url(self, new_base_url: str) -> None:
        if not new_base_url.startswith(("https://", "http://")):
            raise pagerduty.UrlError("API base URL must use scheme https:// or http://")
        self._url = new_base_url


def make_client(settings: PagerDutySettings, gate: UpstreamGate) -> Any:
    """Build the PagerDuty client on the gated transport; the token stays in its auth header."""
    if settings.token is None or settings.base_url is None:
        raise ValueError("make_client needs a resolved base_url and a token")
    client = _PagerDutyClient(
        settings.token.reveal(),
        base_url=settings.base_url,
        transport=GatedHttpx2Transport(gate),
    )
    client.timeout = float(settings.timeout)
    client.retry = {429: 1}
    return client


def read_throttle(status: int, headers: Mapping[str, str], now_epoch: float) -> Throttle | None:
    """429, waiting Retry-After or else PagerDuty's `ratelimit-reset` (seconds to the window's end)."""
    if status != 429:
        return None
    wait = retry_after(headers, now_epoch)
    if wait is None:
        wait = number(headers.get("ratelimit-reset"))
    return Throttle(True, wait, f"upstream answered {status}")
