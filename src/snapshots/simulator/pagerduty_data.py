"""Deterministic PagerDuty data in the real API's shapes: users and schedules."""

from __future__ import annotations

from typing import Any

API = "https://api.pagerduty.com"
WEB = "https://acme.pagerduty.com"

FIRST_NAMES = (
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Radia",
    "Leslie",
)
LAST_NAMES = (
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Perlman",
    "Lamport",
)
USER_COUNT = 50
SCHEDULE_COUNT = 20


def user_id(n: int) -> str:
    return f"PUSR{n:03d}"


def schedule_id(n: int) -> str:
    return f"PSCH{n:03d}"


def schedule_ids() -> list[str]:
    return [schedule_id(n) for n in range(1, SCHEDULE_COUNT + 1)]


def user(n: int) -> dict[str, Any]:
    """User number `n` (1-based) as GET /users/{id} shows it."""
    first = FIRST_NAMES[(n - 1) % len(FIRST_NAMES)]
    last = LAST_NAMES[((n - 1) // len(FIRST_NAMES)) % len(LAST_NAMES)]
    uid = user_id(n)
    return {
        "id": uid,
        "type": "user",
        "summary": f"{first} {last}",
        "self": f"{API}/users/{uid}",
        "html_url": f"{WEB}/users/{uid}",
        "name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}{n}@example.com",
        "time_zone": "UTC",
        "color": "purple",
        "role": "user",
        "avatar_url": f"https://secure.gravatar.com/avatar/{uid.lower()}.png?d=mm&r=PG",
        "description": None,
        "invitation_sent": False,
        "job_title": None,
        "teams": [],
        "contact_methods": [
            {
                "id": f"PCM{n:03d}",
                "type": "email_contact_method_reference",
                "summary": "Default",
                "self": f"{API}/users/{uid}/contact_methods/PCM{n:03d}",
                "html_url": None,
            }
        ],
        "notification_rules": [],
        "coordinated_incidents": [],
    }


def schedule_number(object_id: str) -> int | None:
    """The number behind a simulator schedule id, or None when the schedule does not exist."""
    if not object_id.startswith("PSCH") or not object_id[4:].isdigit():
        return None
    n = int(object_id[4:])
    return n if 1 <= n <= SCHEDULE_COUNT else None


def on_call_users(n: int, rotation: int) -> list[dict[str, Any]]:
    """Users on call in schedule `n`: 1-4 of them, shifted by each rotation of the roster."""
    size = 1 + n % 4
    start = (n * 3 + rotation) % USER_COUNT
    return [user((start + i) % USER_COUNT + 1) for i in range(size)]


def schedule(n: int, rotation: int) -> dict[str, Any]:
    """Schedule `n` as GET /schedules/{id} shows it."""
    sid = schedule_id(n)
    users = on_call_users(n, rotation)
    return {
        "id": sid,
        "type": "schedule",
        "summary": f"Primary on-call {n:02d}",
        "self": f"{API}/schedules/{sid}",
        "html_url": f"{WEB}/schedules/{sid}",
        "name": f"Primary on-call {n:02d}",
        "time_zone": "UTC",
        "description": f"Team {n:02d} primary rotation",
        "escalation_policies": [],
        "teams": [],
        "users": [
            {
                "id": u["id"],
                "type": "user_reference",
                "summary": u["summary"],
                "self": u["self"],
                "html_url": u["html_url"],
            }
            for u in users
        ],
        "schedule_layers": [
            {
                "id": f"PLAY{n:03d}",
                "name": "Layer 1",
                "start": "2026-01-01T00:00:00Z",
                "end": None,
                "rotation_virtual_start": "2026-01-01T00:00:00Z",
                "rotation_turn_length_seconds": 604800,
                "users": [
                    {"user": {"id": u["id"], "type": "user_reference", "summary": u["summary"]}}
                    for u in users
                ],
                "restrictions": [],
            }
        ],
    }
