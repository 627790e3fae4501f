"""This process's identity: its role, and its instance name (in logs, the leader record, and
a tag on every upstream request's User-Agent, so an upstream can tell replicas apart)."""

from __future__ import annotations

import os
import re
import socket
from typing import Literal

from snapshots import __version__

Role = Literal["serve", "api", "worker"]
"""serve: read API and a worker; api: read API only; worker: scheduler and refresher only."""


MAX_INSTANCE_NAME = 64


def instance_name() -> str:
    """SNAPSHOTS_INSTANCE (e.g. the pod name), else host-pid; reduced to a safe token."""
    name = os.environ.get("SNAPSHOTS_INSTANCE") or f"{socket.gethostname()}-{os.getpid()}"
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)[:MAX_INSTANCE_NAME]


def user_agent_tag() -> str:
    """What every upstream request's User-Agent ends with."""
    return f"snapshots/{__version__} snapshots-instance/{instance_name()}"
