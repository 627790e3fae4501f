"""A user-defined fetch function, as an operator would write one (used by test_providers)."""

from __future__ import annotations

from typing import Any


def open_issue_count(client: Any, key: str) -> dict[str, Any]:
    """The open issue count of repository `key`, read with the gateway's PyGithub client."""
    repo = client.get_repo(key)
    return {"repo": repo.full_name, "open_issues": repo.open_issues_count}


def repo_view(client: Any, key: str) -> dict[str, Any]:
    """A view of a repository named by `owner/repo[/view]`: keys with any number of slashes,
    including ones ending in `history` or `refresh`."""
    owner, name, *view = key.split("/")
    repo = client.get_repo(f"{owner}/{name}")
    return {"key": key, "repo": repo.full_name, "view": "/".join(view)}
