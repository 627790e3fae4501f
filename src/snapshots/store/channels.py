"""The LISTEN/NOTIFY channels between processes and their payloads (JSON, well under 8000 bytes).

- `snapshots_changes`: a refresh was stored (any outcome); sent inside the storing
  transaction, so it arrives exactly when the change is visible.
- `snapshots_requests`: an API replica queued a refresh request (payload: its id).
- `snapshots_replies`: the active worker moved a request on (started, refused, finished),
  with everything the asking replica needs, so it reads the row only if a reply was lost.
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


MAX_ERROR_CHARS = 2000  # keeps a reply far below NOTIFY's 8000-byte payload limit


class Reply(msgspec.Struct, frozen=True, omit_defaults=True):
    """A request's new status and answer (the same as its row in `refresh_requests`)."""

    id: int
    status: str
    run_id: int | None = None
    joined: bool | None = None
    outcome: str | None = None
    error: str | None = None
    error_code: str | None = None
    retry_after: int | None = None
    not_found: bool | None = None


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
