"""The provider kinds this process knows: the built-in ones, and any an installed package adds
under the `snapshots.provider_kinds` entry point (a `ProviderKind` value)."""

from __future__ import annotations

from importlib.metadata import entry_points

from snapshots.providers import github, http, jira, pagerduty
from snapshots.providers.kind import ProviderKind

BUILT_IN: tuple[ProviderKind, ...] = (pagerduty.KIND, github.KIND, jira.KIND, http.KIND)


def known_kinds() -> tuple[ProviderKind, ...]:
    """The built-in kinds and the installed ones; an installed kind cannot replace a built-in."""
    kinds = {kind.name: kind for kind in BUILT_IN}
    for point in entry_points(group="snapshots.provider_kinds"):
        kind = point.load()
        if isinstance(kind, ProviderKind) and kind.name not in kinds:
            kinds[kind.name] = kind
    return tuple(kinds.values())
