"""Deterministic Jira data in the REST API's shapes: projects PRJ1..PRJ50 (by default), issues, users.

`api` is the REST root the client used (e.g. `http://127.0.0.1:8001/jira/rest/api/2`), so the
`self` links point back at the simulator.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

PROJECT_COUNT = 50
USER_COUNT = 25
# Most projects fit on one page; these need several at maxResults=50 (and at the cap of 100).
ISSUE_COUNTS = {3: 130, 8: 101}
# (name, id, category key, category id, category name, colour)
STATUSES = (
    ("To Do", 10000, "new", 2, "To Do", "blue-gray"),
    ("In Progress", 3, "indeterminate", 4, "In Progress", "yellow"),
    ("Done", 10001, "done", 3, "Done", "green"),
)
ISSUE_TYPES = (("Task", 10001), ("Bug", 10002), ("Story", 10003))
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
FIELDS = {
    "summary": "string",
    "status": "status",
    "assignee": "user",
    "reporter": "user",
    "issuetype": "issuetype",
    "priority": "priority",
    "created": "datetime",
    "updated": "datetime",
    "labels": "array",
}
NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia")
VERBS = ("Fix", "Add", "Remove", "Document", "Speed up", "Refactor")
NOUNS = ("login flow", "billing export", "search index", "audit log", "rate limiter", "CLI")
LABELS = ("backend", "frontend", "tech-debt", "customer")
EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def project_key(n: int) -> str:
    return f"PRJ{n}"


def project_number(key_or_id: str, count: int = PROJECT_COUNT) -> int | None:
    """The number behind a project key (any case) or numeric id, or None if no such project
    (the simulator has `count` projects)."""
    upper = key_or_id.upper()
    if upper.startswith("PRJ") and upper[3:].isdigit():
        n = int(upper[3:])
    elif key_or_id.isdigit():
        n = int(key_or_id) - 10000
    else:
        return None
    return n if 1 <= n <= count else None


def issue_count(n: int) -> int:
    return ISSUE_COUNTS.get(n, 5 + (n * 11) % 40)


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def user(api: str, k: int) -> dict[str, Any]:
    name = f"{NAMES[k % len(NAMES)]} {chr(ord('A') + k % 26)}."
    account_id = f"5b10ac8d82e05b22cc7d{k:04x}"
    return {
        "self": f"{api}/user?accountId={account_id}",
        "accountId": account_id,
        "name": f"user{k:02d}",
        "key": f"user{k:02d}",
        "emailAddress": f"user{k:02d}@example.com",
        "avatarUrls": {"48x48": f"https://avatars.example.com/{account_id}.png"},
        "displayName": name,
        "active": True,
        "timeZone": "UTC",
        "accountType": "atlassian",
    }


def issue_type(api: str, index: int) -> dict[str, Any]:
    name, type_id = ISSUE_TYPES[index % len(ISSUE_TYPES)]
    return {
        "self": f"{api}/issuetype/{type_id}",
        "id": str(type_id),
        "description": f"A {name.lower()}.",
        "iconUrl": f"https://jira.example.com/images/icons/{name.lower()}.svg",
        "name": name,
        "subtask": False,
    }


def status(api: str, index: int) -> dict[str, Any]:
    name, status_id, key, category_id, category, colour = STATUSES[index % len(STATUSES)]
    return {
        "self": f"{api}/status/{status_id}",
        "description": "",
        "iconUrl": "https://jira.example.com/images/icons/status_generic.gif",
        "name": name,
        "id": str(status_id),
        "statusCategory": {
            "self": f"{api}/statuscategory/{category_id}",
            "id": category_id,
            "key": key,
            "colorName": colour,
            "name": category,
        },
    }


def status_names() -> list[str]:
    return [s[0] for s in STATUSES]


def project(api: str, n: int) -> dict[str, Any]:
    """Project `n` as GET /rest/api/2/project/{key} shows it."""
    pid = str(10000 + n)
    return {
        "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
        "self": f"{api}/project/{pid}",
        "id": pid,
        "key": project_key(n),
        "description": f"Work tracking for team {n:02d}",
        "lead": user(api, n % USER_COUNT + 1),
        "components": [],
        "issueTypes": [issue_type(api, i) for i in range(len(ISSUE_TYPES))],
        "assigneeType": "UNASSIGNED",
        "versions": [],
        "name": f"Project {n:02d}",
        "roles": {},
        "avatarUrls": {"48x48": f"https://avatars.example.com/project/{pid}.png"},
        "projectTypeKey": "software",
        "simplified": False,
        "style": "classic",
        "isPrivate": False,
        "properties": {},
        "archived": False,
    }


def _touches(i: int, mutation: int) -> tuple[int, int]:
    """How many of mutations 1..`mutation` touched issue `i` (every fifth does), and the last one."""
    first = (-i * 3) % 5 or 5
    if mutation < first:
        return 0, 0
    count = (mutation - first) // 5 + 1
    return count, first + 5 * (count - 1)


def issue(api: str, n: int, i: int, mutation: int) -> dict[str, Any]:
    """Issue `PRJn-i`; a project mutation moves some issues' status and assignee, and `updated`."""
    issue_id = str(10000 + n * 1000 + i)
    touches, last_touch = _touches(i, mutation)
    created = EPOCH + timedelta(hours=i * 7 + n)
    updated = created + timedelta(hours=i % 48, days=last_touch)
    unassigned = (i + touches) % 6 == 0
    return {
        "expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
        "id": issue_id,
        "self": f"{api}/issue/{issue_id}",
        "key": f"{project_key(n)}-{i}",
        "fields": {
            "summary": f"{VERBS[i % len(VERBS)]} the {NOUNS[(i * 3 + n) % len(NOUNS)]}",
            "status": status(api, i * 7 + touches),
            "assignee": None if unassigned else user(api, (i * 5 + n + touches) % USER_COUNT + 1),
            "reporter": user(api, (i + n) % USER_COUNT + 1),
            "issuetype": issue_type(api, i),
            "priority": {"self": f"{api}/priority/{i % 5 + 1}", "name": PRIORITIES[(i * n) % 5]},
            "created": _timestamp(created),
            "updated": _timestamp(updated),
            "labels": [LABELS[i % len(LABELS)]] if i % 3 else [],
        },
    }


def issues(api: str, n: int, mutation: int) -> list[dict[str, Any]]:
    return [issue(api, n, i, mutation) for i in range(1, issue_count(n) + 1)]


def select_fields(item: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """`item` with only the requested fields (`*all`/`*navigable` for all, `-name` to drop one)."""
    if fields is None:
        return item
    wanted = set(FIELDS) if {"*all", "*navigable"} & set(fields) else set(fields)
    wanted -= {f[1:] for f in fields if f.startswith("-")}
    return {**item, "fields": {k: v for k, v in item["fields"].items() if k in wanted}}


def field_list() -> list[dict[str, Any]]:
    """GET /rest/api/2/field: the system fields the issues carry."""
    return [
        {
            "id": name,
            "key": name,
            "name": name.capitalize(),
            "custom": False,
            "orderable": name not in ("created", "updated", "status"),
            "navigable": True,
            "searchable": True,
            "clauseNames": [name, "type"] if name == "issuetype" else [name],
            "schema": {"type": kind, "system": name},
        }
        for name, kind in FIELDS.items()
    ]


def server_info(base: str, deployment: str) -> dict[str, Any]:
    """GET /rest/api/2/serverInfo for a Server (Data Center) or a Cloud deployment."""
    cloud = deployment == "Cloud"
    numbers = [1001, 0, 0] if cloud else [9, 12, 2]
    return {
        "baseUrl": base,
        "version": "1001.0.0-SNAPSHOT" if cloud else "9.12.2",
        "versionNumbers": numbers,
        "deploymentType": deployment,
        "buildNumber": 100280 if cloud else 9120002,
        "buildDate": "2026-01-01T00:00:00.000+0000",
        "scmInfo": "0000000000000000000000000000000000000000",
        "serverTitle": "Acme Jira (simulator)",
    }
