"""The LISTEN/NOTIFY channels between processes and their payloads (JSON, well under 8000 bytes).

- `snapshots_changes`: a refresh was stored (any outcome); sent inside the storing
  transaction, so it arrives exactly when the change is visible.
- `snapshots_requests`: an API replica queued a refresh request (payload: its id).
- `snapshots_replies`: the active worker moved a request on (started, refused, finished).
"""

from __future__ import annotations

import msgspec

CHANGES = "snapshots_changes"
REQUESTS = "snapshots_requests"
REPLIES = "snapshots_replies"


class Change(msgspec.Struct, frozen=True):
    """A stored refresh of (dataset, key)."""

    dataset: str
    key: str
    run_id: int
    outcome: str
    snapshot_id: int | None = None


class Reply(msgspec.Struct, frozen=True):
    """A request's new status; the row in `refresh_requests` has the details."""

    id: int
    status: str


def encode(value: Change | Reply) -> str:
    return msgspec.json.encode(value).decode()


def decode_change(payload: str) -> Change | None:
    try:
        return msgspec.json.decode(payload, type=Change)
    except msgspec.DecodeError:
        return None


def decode_reply(payload: str) -> Reply | None:
    try:
        return msgspec.json.decode(payload, type=Reply)
    except msgspec.DecodeError:
        return None
