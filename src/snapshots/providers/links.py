"""Links in upstream bodies moved into the mirror, so a client that follows them (PyGithub's
objects, the jira library's `self` links) stays on the gateway."""

from __future__ import annotations

from typing import Any

_AFTER_BASE = ("", "/", "?", "{", "#")  # what may follow a base URL in a URL below it


def below(value: str, base: str) -> bool:
    """Whether `value` is `base` or a URL below it, not merely sharing its prefix
    (`https://api.x/v1` is not below `https://api.x/v`)."""
    if not value.startswith(base):
        return False
    return base.endswith("/") or value[len(base) : len(base) + 1] in _AFTER_BASE


def relinked(value: Any, old: str, new: str, *, url_keys_only: bool = False) -> Any:
    """`value` with every string at or below `old` moved below `new`, at any depth. With
    `url_keys_only`, only strings held directly under a key ending in `url` (GitHub's
    `url`, `html_url`, `followers_url`...) are moved."""

    def move(item: Any, key: str | None) -> Any:
        if isinstance(item, str):
            if url_keys_only and not (key is not None and key.endswith("url")):
                return item
            return new + item[len(old) :] if below(item, old) else item
        if isinstance(item, list):
            return [move(element, None) for element in item]
        if isinstance(item, dict):
            return {name: move(element, name) for name, element in item.items()}
        return item

    return move(value, None)
