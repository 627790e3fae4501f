"""`[providers.<name>] kind = "http"` (any JSON API) and the own settings of its datasets."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from snapshots.config_types import ProviderSettings


class HttpSettings(ProviderSettings, tag="http"):
    """A JSON API on plain httpx; `base_url` is required, the token optional."""

    auth_header: str = "Authorization"
    auth_template: str = "Bearer {token}"  # {token} is replaced by the token
    headers: dict[str, str] = msgspec.field(default_factory=dict)


class HttpDatasetOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`[datasets."<instance>.<name>"]` of an http provider: where the list is and how it pages."""

    url: str  # relative to base_url, with {key} in it
    items: str | None = None  # dotted path to the list in the body; the body itself when unset
    paginate: Literal["none", "link", "page", "offset"] = "none"
    page_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    params: dict[str, str] = {}
