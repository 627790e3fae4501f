"""The pytest plugin of the testing kit (entry point `snapshots`): fixtures that serve canned
snapshots over real HTTP, so an integration's tests run the real client with no gateway.

    def test_pages_the_on_call(snapshots_gateway, snapshots_client):
        snapshots_gateway.add("pagerduty.schedule_users", "PSCH001", [{"id": "PU1"}])
        assert my_bot.on_call(snapshots_client) == ["PU1"]

`@pytest.mark.snapshots_data("canned.json")` loads a JSON file (relative to the test file).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from snapshots_client import SnapshotsClient
from snapshots_client.testing.fake import FakeGateway
from snapshots_client.testing.server import serve


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "snapshots_data(*paths): JSON files of canned snapshots for the snapshots_gateway fixture",
    )


@pytest.fixture
def snapshots_gateway(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeGateway]:
    """A fake gateway on a loopback port; SNAPSHOTS_URL points at it for code that reads it."""
    gateway = FakeGateway()
    base = Path(str(request.node.path)).parent
    for marker in request.node.iter_markers("snapshots_data"):
        for path in marker.args:
            gateway.load(base / path)
    with serve(gateway):
        assert gateway.url is not None
        monkeypatch.setenv("SNAPSHOTS_URL", gateway.url)
        monkeypatch.delenv("SNAPSHOTS_TOKEN", raising=False)
        yield gateway


@pytest.fixture
def snapshots_client(snapshots_gateway: FakeGateway) -> Iterator[SnapshotsClient]:
    """The real client pointed at `snapshots_gateway`, with short retry backoff."""
    with SnapshotsClient(snapshots_gateway.url, backoff=0.01) as client:
        yield client
