"""The PagerDuty provider module through the real `pagerduty` library against the simulator."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from helpers import SIM_TOKEN, Simulator
from snapshots.budget import Budget
from snapshots.config import Secret
from snapshots.config_types import Duration
from snapshots.errors import UpstreamError, UpstreamNotFound
from snapshots.providers.kind import FetchContext
from snapshots.providers.pagerduty import client as pagerduty_client
from snapshots.providers.pagerduty import datasets as pagerduty
from snapshots.providers.pagerduty.settings import PagerDutySettings
from snapshots.providers.transport import RequestMeter, UpstreamGate, current_meter
from snapshots.simulator import pagerduty_data


def _client(simulator: Simulator, token: str = SIM_TOKEN) -> object:
    settings = PagerDutySettings(
        base_url=f"{simulator.url}/pagerduty", token=Secret(token), timeout=Duration(5)
    )
    return pagerduty_client.make_client(
        settings, UpstreamGate("pagerduty", Budget("pagerduty", None))
    )


CTX = FetchContext(now=datetime(2026, 11, 26, tzinfo=UTC), ttl_seconds=300)


def test_library_client_reads_schedule_users_over_plain_http(simulator: Simulator) -> None:
    users = pagerduty.fetch_schedule_users(_client(simulator), "PSCH005", CTX)

    assert users == pagerduty_data.on_call_users(5, rotation=0)
    assert simulator.requests() == 1


def test_library_client_sees_the_schedule_object(simulator: Simulator) -> None:
    client = _client(simulator)

    schedule = client.rget("schedules/PSCH005")  # type: ignore[attr-defined]

    assert schedule["id"] == "PSCH005"
    assert [u["id"] for u in schedule["users"]] == [
        u["id"] for u in pagerduty_data.on_call_users(5, 0)
    ]


def test_rotation_changes_who_is_on_call(simulator: Simulator) -> None:
    before = pagerduty.fetch_schedule_users(_client(simulator), "PSCH005", CTX)
    simulator.rotate_schedule("PSCH005")

    after = pagerduty.fetch_schedule_users(_client(simulator), "PSCH005", CTX)

    assert before != after
    assert after == pagerduty_data.on_call_users(5, rotation=1)


def test_wrong_token_is_an_actionable_error_without_the_token(simulator: Simulator) -> None:
    with pytest.raises(UpstreamError) as raised:
        pagerduty.fetch_schedule_users(_client(simulator, token="wrong-token-1234"), "PSCH005", CTX)

    assert "401" in raised.value.message
    assert "check the pagerduty token" in raised.value.message
    assert "1234" not in str(raised.value)


def test_unknown_schedule_is_not_found(simulator: Simulator) -> None:
    with pytest.raises(UpstreamNotFound, match="PSCH404"):
        pagerduty.fetch_schedule_users(_client(simulator), "PSCH404", CTX)


def test_every_request_is_metered_at_the_transport(simulator: Simulator) -> None:
    meter = RequestMeter()
    token = current_meter.set(meter)
    try:
        client = _client(simulator)
        pagerduty.fetch_schedule_users(client, "PSCH001", CTX)
        pagerduty.fetch_schedule_users(client, "PSCH002", CTX)
    finally:
        current_meter.reset(token)

    assert meter.requests == simulator.requests() == 2


def test_https_and_http_base_urls_are_accepted_other_schemes_are_not(simulator: Simulator) -> None:
    client = _client(simulator)

    client.url = "https://api.pagerduty.com"  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="https:// or http://"):
        client.url = "ftp://api.pagerduty.com"  # type: ignore[attr-defined]
