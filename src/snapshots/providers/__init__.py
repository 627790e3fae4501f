"""Provider modules: each knows one upstream API and declares its datasets."""

from snapshots.providers import github, jira, pagerduty
from snapshots.providers.base import ProviderDefinition

BUILT_IN: tuple[ProviderDefinition, ...] = (pagerduty.PROVIDER, github.PROVIDER, jira.PROVIDER)
