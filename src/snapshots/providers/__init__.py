"""Provider modules: each knows one upstream API and declares its datasets."""

from snapshots.providers import pagerduty
from snapshots.providers.base import ProviderDefinition

BUILT_IN: tuple[ProviderDefinition, ...] = (pagerduty.PROVIDER,)
