"""An httpx client on the gated transport, sending the token in the configured header."""

from __future__ import annotations

from typing import Any

import httpx

from snapshots.providers.http.settings import HttpSettings
from snapshots.providers.transport import GatedHttpxTransport, UpstreamGate


def make_client(settings: HttpSettings, gate: UpstreamGate) -> Any:
    if settings.base_url is None:
        raise ValueError("make_client needs a resolved base_url")
    headers = dict(settings.headers)
    if settings.token is not None:
        headers[settings.auth_header] = settings.auth_template.replace(
            "{token}", settings.token.reveal()
        )
    return httpx.Client(
        base_url=settings.base_url,
        transport=GatedHttpxTransport(gate),
        timeout=float(settings.timeout),
        headers=headers,
        follow_redirects=False,
    )


def check_settings(settings: HttpSettings) -> str | None:
    if settings.base_url is None:
        return "base_url: required for a provider of kind http"
    return None
