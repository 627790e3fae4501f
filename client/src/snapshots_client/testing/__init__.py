"""Testing kit for integrations: a fake gateway with canned snapshots and pytest fixtures
(`snapshots_gateway`, `snapshots_client`), loaded through the `pytest11` entry point."""

from snapshots_client.testing.fake import CannedError, CannedVersion, FakeGateway, Recorded
from snapshots_client.testing.server import serve

__all__ = ["CannedError", "CannedVersion", "FakeGateway", "Recorded", "serve"]
