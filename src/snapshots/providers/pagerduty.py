"""PagerDuty: the REST API v2 client from the `pagerduty` package and its datasets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pagerduty

from snapshots.config import BudgetLimit, ProviderSettings
from snapshots.errors import UpstreamError
from snapshots.providers.base import (
    DatasetDefinition,
    FetchContext,
    JSONValue,
    KeyFormat,
    ProviderDefinition,
    incomplete,
    raise_for_status,
    transport_failure,
)
from snapshots.providers.transport import GatedHttpx2Transport, UpstreamGate

PAGERDUTY_ID = KeyFormat(
    pattern=r"P[A-Z0-9]{5,13}",
    description="a PagerDuty object id (P followed by 5-13 upper-case letters or digits)",
    example="PABC123",
)


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


def make_client(settings: ProviderSettings, gate: UpstreamGate) -> Any:
    """Build the PagerDuty client on the gated transport; the token stays in its auth header."""
    if settings.token is None or settings.base_url is None:
        raise ValueError("make_client needs a resolved base_url and a token")
    client = _PagerDutyClient(
        settings.token.reveal(),
        base_url=settings.base_url,
        transport=GatedHttpx2Transport(gate),
    )
    client.timeout = settings.timeout_seconds
    client.retry = {429: 1}
    return client


def _get(client: Any, path: str, what: str, params: dict[str, str] | None = None) -> Any:
    """GET a PagerDuty path and decode JSON, turning every failure into a safe, actionable error."""
    try:
        response = client.get(path, params=params)
    except pagerduty.Error as exc:
        # The library's messages can carry a truncated token; never pass them on.
        response = getattr(exc, "response", None)
        if response is None:
            raise transport_failure("pagerduty", what, exc) from None
    raise_for_status("pagerduty", response.status_code, what)
    try:
        return response.json()
    except ValueError:
        raise UpstreamError(f"pagerduty sent malformed JSON for {what}") from None


def fetch_schedule_users(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """Users on call in schedule `key` from now until one TTL ahead (GET /schedules/{id}/users)."""
    since = ctx.now
    until = ctx.now + timedelta(seconds=ctx.ttl_seconds)
    what = f"schedule {key}"
    body = _get(
        client,
        f"schedules/{key}/users",
        what,
        params={"since": since.isoformat(), "until": until.isoformat()},
    )
    users = body.get("users") if isinstance(body, dict) else None
    if not isinstance(users, list) or not all(isinstance(u, dict) and "id" in u for u in users):
        raise UpstreamError(f"pagerduty sent an unexpected body for {what}: no list of users")
    # The endpoint is not paged, so the one answer must be the whole list: one that says there
    # is more (PagerDuty's classic `more` / `total`) is a partial list we cannot complete.
    total = body.get("total")
    if body.get("more") is True:
        said = "more: true"
    elif isinstance(total, int) and not isinstance(total, bool) and total > len(users):
        said = f"total {total}"
    else:
        return users
    raise incomplete(
        f"pagerduty.schedule_users {key}",
        f"the answer says {said}, but this endpoint is not paged, after {len(users)} users",
    )


def fetch_escalation_policy(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """One escalation policy with its rules and targets (GET /escalation_policies/{id})."""
    what = f"escalation policy {key}"
    body = _get(client, f"escalation_policies/{key}", what)
    policy = body.get("escalation_policy") if isinstance(body, dict) else None
    if not isinstance(policy, dict) or policy.get("id") != key:
        raise UpstreamError(f"pagerduty sent an unexpected body for {what}: no escalation_policy")
    return policy


PROVIDER = ProviderDefinition(
    name="pagerduty",
    default_base_url="https://api.pagerduty.com",
    # PagerDuty allows 960 REST requests per minute per account; keep headroom for other users.
    default_budget=BudgetLimit(900, 60.0),
    make_client=make_client,
    datasets=(
        DatasetDefinition(
            name="pagerduty.schedule_users",
            provider="pagerduty",
            key_format=PAGERDUTY_ID,
            default_ttl_seconds=300.0,
            fetch=fetch_schedule_users,
            description="users on call in a schedule, from now to one TTL ahead",
        ),
        DatasetDefinition(
            name="pagerduty.escalation_policy",
            provider="pagerduty",
            key_format=PAGERDUTY_ID,
            default_ttl_seconds=600.0,
            fetch=fetch_escalation_policy,
            description="an escalation policy with its rules and targets",
        ),
    ),
)
