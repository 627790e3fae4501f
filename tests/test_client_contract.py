"""The gateway contract (`snapshots_client.testing.contract`) against the real service on the
upstream simulator: the same tests the testing kit's FakeGateway passes in client/tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import SIM_TOKEN, Gateway, Simulator
from snapshots.api.auth import create_token
from snapshots.config import JobsConfig
from snapshots_client.testing.contract import GatewayContract, Role


class ServiceUnderTest:
    """A running gateway; `publish` rotates a simulator schedule and has the gateway refresh it,
    returning the users the simulator itself now answers."""

    dataset = "pagerduty.schedule_users"

    def __init__(self, gateway: Gateway, simulator: Simulator, tokens: dict[Role, str]) -> None:
        self.url = gateway.server.url
        self.simulator = simulator
        self._tokens = tokens

    def token(self, role: Role) -> str:
        return self._tokens[role]

    def key(self, number: int) -> str:
        return f"PSCH{number + 1:03d}"  # PSCH001 is refreshed on schedule; leave it alone

    def publish(self, key: str) -> Any:
        self.simulator.mutate("pagerduty", key)
        with httpx.Client(base_url=self.url, timeout=60) as http:
            answer = http.post(
                f"/api/v1/snapshots/{self.dataset}/{key}/refresh",
                params={"wait": "30", "accept_shrink": "true"},
                headers={"Authorization": f"Bearer {self.token('operator')}"},
            )
        assert answer.status_code == 200, answer.text
        upstream = self.simulator.http.get(
            f"/pagerduty/schedules/{key}/users",
            headers={"Authorization": f"Token token={SIM_TOKEN}"},
        )
        upstream.raise_for_status()
        return upstream.json()["users"]


@pytest.fixture
def gateway_under_test(
    start_gateway: Callable[[JobsConfig], Gateway],
    every_dataset_config: Callable[..., JobsConfig],
    simulator: Simulator,
    tmp_path: Path,
) -> ServiceUnderTest:
    path = tmp_path / "tokens"
    tokens: dict[Role, str] = {
        "reader": create_token(path, "contract-reader", "reader"),
        "operator": create_token(path, "contract-operator", "operator"),
    }
    gateway = start_gateway(every_dataset_config(api=f'tokens_file = "{path}"'))
    return ServiceUnderTest(gateway, simulator, tokens)


class TestService(GatewayContract):
    """Every contract test, answered by the service."""
