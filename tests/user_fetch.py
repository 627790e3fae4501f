"""A user-defined fetch function, as an operator would write one (used by test_providers)."""

from __future__ import annotations

from typing import Any


def open_issue_count(client: Any, key: str) -> dict[str, Any]:
    """The open issue count of repository `key`, read with the gateway's PyGithub client."""
    repo = client.get_repo(key)
    return {"repo": repo.full_name, "open_issues": repo.open_issues_count}
