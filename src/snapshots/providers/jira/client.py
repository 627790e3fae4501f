"""The `jira` library on the gated requests adapter (Cloud and Server/DC)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import jira

from snapshots.providers.jira.settings import JiraSettings
from snapshots.providers.transport import GatedRequestsAdapter, UpstreamGate


def deployment_of(settings: JiraSettings) -> str:
    """`cloud` or `server`: as configured, else guessed from the host (Atlassian Cloud sites)."""
    if settings.deployment is not None:
        return settings.deployment
    host = urlsplit(settings.base_url or "").hostname or ""
    return "cloud" if host.endswith(".atlassian.net") else "server"


def check_settings(settings: JiraSettings) -> str | None:
    """Jira Cloud API tokens only work with the account's email (HTTP Basic)."""
    if deployment_of(settings) == "cloud" and not settings.email:
        return "email: required for Jira Cloud (API tokens authenticate with the account email)"
    return None


def make_client(settings: JiraSettings, gate: UpstreamGate) -> Any:
    """The jira client on the gated adapter: its retries off, a timeout set (it has none by default).

    Cloud API tokens authenticate as HTTP Basic with the account email; Server/DC personal
    access tokens as a Bearer token.
    """
    if settings.token is None or settings.base_url is None:
        raise ValueError("make_client needs a resolved base_url and a token")
    email = settings.email
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
        timeout=float(settings.timeout),
        **auth,
    )
    # Without a serverInfo request the library does not know it talks to Cloud, and its
    # Cloud-only methods (enhanced_search_issues) would return None.
    client.deploymentType = "Cloud" if deployment_of(settings) == "cloud" else "Server"
    adapter = GatedRequestsAdapter(gate, float(settings.timeout))
    client._session.mount("https://", adapter)
    client._session.mount("http://", adapter)
    return client
