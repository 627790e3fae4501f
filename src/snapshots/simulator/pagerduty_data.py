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


def schedule_number(object_id: str, count: int = SCHEDULE_COUNT) -> int | None:
    """The number behind a simulator schedule id, or None when the schedule does not exist
    (the simulator has `count` schedules)."""
    if not object_id.startswith("PSCH") or not object_id[4:].isdigit():
        return None
    n = int(object_id[4:])
    return n if 1 <= n <= count else None


def on_call_users(n: int, rotation: int) -> list[dict[str, Any]]:
    """Users on call in schedule `n`: 1-4 of them, shifted by each rotation of the roster."""
    size = 1 + n % 4
    start = (n * 3 + rotation) % USER_COUNT
    return [user((start + i) % USER_COUNT + 1) for i in range(size)]


def user_number(object_id: str) -> int | None:
    """The number behind a simulator user id, or None when there is no such user."""
    if not object_id.startswith("PUSR") or not object_id[4:].isdigit():
        return None
    n = int(object_id[4:])
    return n if 1 <= n <= USER_COUNT else None


def deleted_user_reference(n: int) -> dict[str, Any] | None:
    """A deleted user still rendered in every fifth schedule's final layer (PagerDuty keeps
    `deleted_at` on such references; GET /users/{id} answers 404 for them)."""
    if n % 5 != 0:
        return None
    uid = f"PDEL{n:03d}"
    return {
        "id": uid,
        "type": "user_reference",
        "summary": f"Former member {n:02d}",
        "self": f"{API}/users/{uid}",
        "html_url": f"{WEB}/users/{uid}",
        "deleted_at": "2026-01-15T09:00:00Z",
    }


def final_schedule(n: int, rotation: int, since: str, until: str) -> dict[str, Any]:
    """The schedule's final layer rendered over [since, until): one entry per user on call
    (the same users GET /schedules/{id}/users answers), plus any deleted user's entry."""
    references = [
        {"id": u["id"], "type": "user_reference", "summary": u["summary"], "self": u["self"]}
        for u in on_call_users(n, rotation)
    ]
    deleted = deleted_user_reference(n)
    if deleted is not None:
        references.append(deleted)
    return {
        "name": "Final Schedule",
        "rendered_schedule_entries": [
            {"start": since, "end": until, "user": reference} for reference in references
        ],
        "rendered_coverage_percentage": 100.0,
    }


def schedule(
    n: int, rotation: int, since: str = "2026-01-01T00:00:00Z", until: str = "2026-01-01T00:01:00Z"
) -> dict[str, Any]:
    """Schedule `n` as GET /schedules/{id}?since=&until= shows it, its final layer rendered."""
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
        "final_schedule": final_schedule(n, rotation, since, until),
    }


POLICY_COUNT = 10


def policy_id(n: int) -> str:
    return f"PPOL{n:03d}"


def policy_number(object_id: str) -> int | None:
    """The number behind a simulator escalation policy id, or None when it does not exist."""
    if not object_id.startswith("PPOL") or not object_id[4:].isdigit():
        return None
    n = int(object_id[4:])
    return n if 1 <= n <= POLICY_COUNT else None


def _reference(kind: str, object_id: str, summary: str, collection: str) -> dict[str, Any]:
    return {
        "id": object_id,
        "type": f"{kind}_reference",
        "summary": summary,
        "self": f"{API}/{collection}/{object_id}",
        "html_url": f"{WEB}/{collection}/{object_id}",
    }


def escalation_rules(n: int, mutation: int) -> list[dict[str, Any]]:
    """Policy `n`'s rules: 1-3 levels, each a schedule and maybe a user; mutations reshuffle them."""
    rules = []
    for level in range(1 + (n + mutation) % 3):
        schedule_n = (n + level * 7 + mutation) % SCHEDULE_COUNT + 1
        targets = [
            _reference(
                "schedule",
                schedule_id(schedule_n),
                f"Primary on-call {schedule_n:02d}",
                "schedules",
            )
        ]
        if (n + level) % 2 == 0:
            u = user((n * 5 + level + mutation * 3) % USER_COUNT + 1)
            targets.append(_reference("user", u["id"], u["summary"], "users"))
            if (n + level) % 4 == 0:
                del targets[0]  # a level that pages one person directly, no schedule
        # Policies 1, 4, 7... page their first level and the next at once (a delay of 0).
        delay = 0 if level == 0 and n % 3 == 1 else 15 * (level + 1) + 15 * (mutation % 2)
        rules.append(
            {
                "id": f"PERL{n:03d}{level + 1}",
                "escalation_delay_in_minutes": delay,
                "targets": targets,
            }
        )
    return rules


def escalation_policy(n: int, mutation: int) -> dict[str, Any]:
    """Escalation policy `n` as GET /escalation_policies/{id} shows it."""
    pid = policy_id(n)
    return {
        "id": pid,
        "type": "escalation_policy",
        "summary": f"Team {n:02d} escalation",
        "self": f"{API}/escalation_policies/{pid}",
        "html_url": f"{WEB}/escalation_policies/{pid}",
        "name": f"Team {n:02d} escalation",
        "description": f"Who gets paged for team {n:02d}",
        "num_loops": n % 3,
        "on_call_handoff_notifications": "if_has_services",
        "escalation_rules": escalation_rules(n, mutation),
        "services": [],
        "teams": [],
    }


def users_page(offset: int, limit: int, total: bool) -> dict[str, Any]:
    """GET /users with classic offset pagination over every user."""
    numbers = range(offset + 1, min(offset + limit, USER_COUNT) + 1)
    return {
        "users": [user(n) for n in numbers],
        "offset": offset,
        "limit": limit,
        "more": offset + limit < USER_COUNT,
        "total": USER_COUNT if total else None,
    }
