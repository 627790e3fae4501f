"""The gateway contract against the testing kit's FakeGateway, served over real HTTP.

The service's suite runs the same `GatewayContract` against a running gateway on the upstream
simulator (tests/test_client_contract.py), so the fake cannot drift from the service.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from snapshots_client.testing import FakeGateway, serve
from snapshots_client.testing.contract import GatewayContract, Role

DATASET = "pagerduty.schedule_users"


class FakeUnderTest:
    """A FakeGateway with a reader and an operator token; `publish` adds a canned version."""

    dataset = DATASET

    def __init__(self, fake: FakeGateway, url: str) -> None:
        self.fake = fake
        self.url = url
        self._tokens: dict[Role, str] = {"reader": "reader-token", "operator": "operator-token"}
        for role, token in self._tokens.items():
            fake.require_token(token, role)
        self._published = 0

    def token(self, role: Role) -> str:
        return self._tokens[role]

    def key(self, number: int) -> str:
        return f"PSCH{number:03d}"

    def publish(self, key: str) -> Any:
        self._published += 1
        data = [{"id": f"PU{self._published:03d}", "email": f"u{self._published}@example.com"}]
        self.fake.add(self.dataset, key, data)
        return data


@pytest.fixture
def gateway_under_test() -> Iterator[FakeUnderTest]:
    fake = FakeGateway()
    with serve(fake) as served:
        assert served.url is not None
        yield FakeUnderTest(fake, served.url)


class TestFakeGateway(GatewayContract):
    """Every contract test, answered by the fake."""
