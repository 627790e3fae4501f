"""Deterministic GitHub data in the REST API's shapes: the `acme` organisation (with its members),
repos, collaborators.

API URLs (`url`, `*_url`) are built on `api`, the address the client reached the simulator at,
because PyGithub follows them (e.g. `repo.url + "/collaborators"`) and refuses other hosts.
"""

from __future__ import annotations

import base64
from typing import Any

WEB = "https://github.com"
ORG = "acme"
ORG_ID = 9919
REPO_COUNT = 30
USER_POOL = 400
# Most repos have a handful of collaborators; these need several pages at per_page=30.
COLLABORATOR_COUNTS = {3: 75, 12: 31, 21: 120}
HANDLES = ("octo", "mona", "hubot", "lin", "ada", "grace", "ken", "radia", "barb", "don")
ROLES = ("admin", "maintain", "write", "triage", "read")
PERMISSIONS = {
    "admin": {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True},
    "maintain": {"admin": False, "maintain": True, "push": True, "triage": True, "pull": True},
    "write": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
    "triage": {"admin": False, "maintain": False, "push": False, "triage": True, "pull": True},
    "read": {"admin": False, "maintain": False, "push": False, "triage": False, "pull": True},
}
TOPICS = ("python", "api", "infrastructure", "tooling", "frontend", "data")


def _node_id(kind: str, number: int) -> str:
    """A legacy-format global node id, as `base64("<len>:<Type><id>")` the way GitHub made them."""
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


def repo_name(n: int) -> str:
    return f"repo-{n:02d}"


def full_name(n: int) -> str:
    return f"{ORG}/{repo_name(n)}"


def repo_number(owner: str, name: str, count: int = REPO_COUNT) -> int | None:
    """The number behind `owner/name` (case-insensitive, as on GitHub), or None if no such repo
    (the simulator has `count` repos)."""
    if owner.lower() != ORG or not name.lower().startswith("repo-"):
        return None
    digits = name[5:]
    if not digits.isdigit():
        return None
    n = int(digits)
    return n if 1 <= n <= count and name.lower() == repo_name(n) else None


def _account(api: str, login: str, number: int, kind: str) -> dict[str, Any]:
    url = f"{api}/users/{login}"
    return {
        "login": login,
        "id": number,
        "node_id": _node_id(kind, number),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{number}?v=4",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{WEB}/{login}",
        "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


def organization(api: str) -> dict[str, Any]:
    return _account(api, ORG, ORG_ID, "Organization")


def organization_profile(api: str, repo_count: int = REPO_COUNT) -> dict[str, Any]:
    """The organisation as GET /orgs/{org} shows it (its URLs are below /orgs, not /users);
    every fourth of its `repo_count` repos is private."""
    url = f"{api}/orgs/{ORG}"
    return {
        "login": ORG,
        "id": ORG_ID,
        "node_id": _node_id("Organization", ORG_ID),
        "url": url,
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events",
        "hooks_url": f"{url}/hooks",
        "issues_url": f"{url}/issues",
        "members_url": f"{url}/members{{/member}}",
        "public_members_url": f"{url}/public_members{{/member}}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{ORG_ID}?v=4",
        "description": "Acme's services and tooling",
        "name": "Acme",
        "company": None,
        "blog": "https://acme.example",
        "location": None,
        "email": None,
        "twitter_username": None,
        "is_verified": False,
        "has_organization_projects": True,
        "has_repository_projects": True,
        "public_repos": repo_count - repo_count // 4,
        "public_gists": 0,
        "followers": 12,
        "following": 0,
        "html_url": f"{WEB}/{ORG}",
        "created_at": "2018-05-02T09:00:00Z",
        "updated_at": "2026-01-15T09:00:00Z",
        "archived_at": None,
        "type": "Organization",
    }


def members(api: str, mutations: dict[int, int]) -> list[dict[str, Any]]:
    """The organisation's members, by id: everyone who collaborates on one of its repos (repo
    number -> its mutation count) and is not an outside collaborator."""
    ids = {
        int(user["id"]) - 1000
        for n, mutation in mutations.items()
        for user in collaborators(api, n, mutation)
        if not is_outside_collaborator(user)
    }
    return [_account(api, login(k), 1000 + k, "User") for k in sorted(ids)]


def login(k: int) -> str:
    return f"{HANDLES[k % len(HANDLES)]}-{k:03d}"


def user_number(name: str) -> int | None:
    """The pool number behind a login like `mona-041`, or None if no such user."""
    digits = name.rpartition("-")[2]
    if not digits.isdigit() or not 1 <= int(digits) <= USER_POOL:
        return None
    return int(digits) if name == login(int(digits)) else None


def profile(api: str, k: int) -> dict[str, Any]:
    """Pool user `k` as GET /users/{login} shows it (PyGithub completes lazy users from it)."""
    return {
        **_account(api, login(k), 1000 + k, "User"),
        "name": f"{HANDLES[k % len(HANDLES)].capitalize()} {k:03d}",
        "company": "@acme",
        "blog": "",
        "location": None,
        "email": None,
        "hireable": None,
        "bio": None,
        "twitter_username": None,
        "public_repos": k % 12,
        "public_gists": 0,
        "followers": (k * 7) % 50,
        "following": (k * 3) % 20,
        "created_at": f"2019-{1 + k % 12:02d}-{1 + k % 28:02d}T08:00:00Z",
        "updated_at": f"2026-{1 + k % 12:02d}-{1 + k % 28:02d}T08:00:00Z",
    }


def collaborator_count(n: int) -> int:
    return COLLABORATOR_COUNTS.get(n, 2 + (n * 5) % 7)


def collaborators(api: str, n: int, mutation: int) -> list[dict[str, Any]]:
    """Repo `n`'s collaborators, by id. Each mutation drops the longest-standing collaborator,
    adds a new one and demotes one more admin to write (push)."""
    start = (n * 37) % USER_POOL
    members = sorted((start + mutation + i) % USER_POOL + 1 for i in range(collaborator_count(n)))
    roles = {k: ROLES[(k * 7 + n) % len(ROLES)] for k in members}
    for k in [k for k in members if roles[k] == "admin"][:mutation]:
        roles[k] = "write"
    return [
        {
            **_account(api, login(k), 1000 + k, "User"),
            "permissions": dict(PERMISSIONS[roles[k]]),
            "role_name": roles[k],
        }
        for k in members
    ]


def is_outside_collaborator(user: dict[str, Any]) -> bool:
    """Every fourth pool user is not a member of the organisation."""
    return int(user["id"]) % 4 == 0


def repository(api: str, n: int, mutation: int) -> dict[str, Any]:
    """Repo `n` as GET /repos/{owner}/{repo} shows it; a mutation is a push (pushed_at moves)."""
    name = repo_name(n)
    full_name = f"{ORG}/{name}"
    url = f"{api}/repos/{full_name}"
    private = n % 4 == 0
    pushed = f"2026-03-{1 + n % 28:02d}T{(9 + mutation) % 24:02d}:{n % 60:02d}:00Z"
    open_issues = (n * 3) % 17
    return {
        "id": 700000 + n,
        "node_id": _node_id("Repository", 700000 + n),
        "name": name,
        "full_name": full_name,
        "private": private,
        "owner": organization(api),
        "html_url": f"{WEB}/{full_name}",
        "description": f"Acme service number {n:02d}",
        "fork": False,
        "url": url,
        "forks_url": f"{url}/forks",
        "teams_url": f"{url}/teams",
        "hooks_url": f"{url}/hooks",
        "events_url": f"{url}/events",
        "branches_url": f"{url}/branches{{/branch}}",
        "collaborators_url": f"{url}/collaborators{{/collaborator}}",
        "contributors_url": f"{url}/contributors",
        "issues_url": f"{url}/issues{{/number}}",
        "pulls_url": f"{url}/pulls{{/number}}",
        "languages_url": f"{url}/languages",
        "created_at": f"2021-{1 + n % 12:02d}-{1 + n % 27:02d}T10:00:00Z",
        "updated_at": pushed,
        "pushed_at": pushed,
        "git_url": f"git://github.com/{full_name}.git",
        "ssh_url": f"git@github.com:{full_name}.git",
        "clone_url": f"{WEB}/{full_name}.git",
        "svn_url": f"{WEB}/{full_name}",
        "homepage": None,
        "size": 1024 * n,
        "stargazers_count": (n * 13) % 97,
        "watchers_count": (n * 13) % 97,
        "language": "Python" if n % 3 else "Go",
        "has_issues": True,
        "has_projects": True,
        "has_downloads": True,
        "has_wiki": n % 2 == 0,
        "has_pages": False,
        "has_discussions": False,
        "forks_count": n % 5,
        "mirror_url": None,
        "archived": n == REPO_COUNT,
        "disabled": False,
        "open_issues_count": open_issues,
        "license": None,
        "allow_forking": not private,
        "is_template": False,
        "web_commit_signoff_required": False,
        "topics": [TOPICS[n % len(TOPICS)], TOPICS[(n + 3) % len(TOPICS)]][: 1 + n % 2],
        "visibility": "private" if private else "public",
        "forks": n % 5,
        "open_issues": open_issues,
        "watchers": (n * 13) % 97,
        "default_branch": "main",
        "permissions": dict(PERMISSIONS["admin"]),
        "organization": organization(api),
        "network_count": n % 5,
        "subscribers_count": 1 + n % 9,
    }
