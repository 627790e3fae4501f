"""The generic `http` provider: any JSON API on httpx, with Link-header, page or offset pagination."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from snapshots.config import BudgetLimit, DatasetSettings, ProviderSettings
from snapshots.errors import UpstreamError
from snapshots.providers.base import (
    DatasetDefinition,
    FetchContext,
    JSONValue,
    KeyFormat,
    ProviderDefinition,
    raise_for_status,
    transport_failure,
)
from snapshots.providers.transport import GatedHttpxTransport, UpstreamGate

MAX_PAGES = 1000
DEFAULT_PAGE_SIZE = 100
DEFAULT_BUDGET = BudgetLimit(60, 60.0)
GENERIC_KEY = KeyFormat(
    pattern=r"[A-Za-z0-9][A-Za-z0-9._/:-]{0,199}",
    description="letters, digits and . _ / : - (set key_pattern to be stricter)",
    example="acme/repo-01",
)
PROVIDER_OPTIONS = frozenset({"auth_header", "auth_template", "headers"})
DATASET_OPTIONS = frozenset({"url", "items", "paginate", "page_size", "params"})


def make_client(settings: ProviderSettings, gate: UpstreamGate) -> Any:
    """An httpx client on the gated transport, sending the token in the configured header."""
    if settings.base_url is None:
        raise ValueError("make_client needs a resolved base_url")
    headers = dict(settings.options.get("headers") or {})
    if settings.token is not None:
        template = str(settings.options.get("auth_template", "Bearer {token}"))
        value = template.replace("{token}", settings.token.reveal())
        headers[settings.options.get("auth_header", "Authorization")] = value
    return httpx.Client(
        base_url=settings.base_url,
        transport=GatedHttpxTransport(gate),
        timeout=settings.timeout_seconds,
        headers=headers,
        follow_redirects=False,
    )


def provider_definition(settings: ProviderSettings) -> ProviderDefinition:
    """A user-defined provider (`kind = "http"` in jobs.toml)."""
    return ProviderDefinition(
        name=settings.name,
        default_base_url=settings.base_url or "",
        default_budget=DEFAULT_BUDGET,
        make_client=make_client,
        datasets=(),
        options=PROVIDER_OPTIONS,
    )


def dataset_definition(
    provider: str, settings: DatasetSettings, key_format: KeyFormat
) -> DatasetDefinition:
    """A user-defined dataset read from `url` (with `{key}` in it) on a generic provider."""
    return DatasetDefinition(
        name=settings.name,
        provider=provider,
        key_format=key_format,
        default_ttl_seconds=None,
        fetch=fetch,
        description=f"GET {settings.options.get('url')}",
        options=DATASET_OPTIONS,
    )


def _get(client: httpx.Client, url: str, params: dict[str, str], what: str) -> httpx.Response:
    try:
        # An empty mapping would make httpx drop the query the next-page link carries.
        response = client.get(url, params=params or None)
    except httpx.HTTPError as exc:
        raise transport_failure(client.base_url.host, what, exc) from None
    raise_for_status(client.base_url.host, response.status_code, what)
    return response


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise UpstreamError(f"{what}: the upstream sent malformed JSON") from None


def _items(body: Any, path: str | None, what: str) -> list[Any]:
    """The list at dotted `path` in `body` (the body itself when no path is set)."""
    value = body
    for part in path.split(".") if path else ():
        value = value.get(part) if isinstance(value, dict) else None
    if not isinstance(value, list):
        where = f"at '{path}'" if path else "as the body"
        raise UpstreamError(f"{what}: expected a JSON list {where}")
    return value


def fetch(client: Any, key: str, ctx: FetchContext) -> JSONValue:
    """GET the dataset's URL for `key`, following its pagination to the end."""
    options = ctx.options
    url = str(options["url"]).replace("{key}", quote(key, safe="/"))
    what = f"GET {url}"
    params = dict(options.get("params") or {})
    paginate = options.get("paginate", "none")
    path = options.get("items")
    if paginate == "none":
        body = _json(_get(client, url, params, what), what)
        return _items(body, path, what) if path else body
    size = int(options.get("page_size", DEFAULT_PAGE_SIZE))
    collected: list[Any] = []
    next_url: str | None = url
    for page in range(MAX_PAGES):
        if paginate == "page":
            params.update(page=str(page + 1), per_page=str(size))
        elif paginate == "offset":
            params.update(offset=str(page * size), limit=str(size))
        assert next_url is not None
        response = _get(client, next_url, params, what)
        body = _json(response, what)
        items = _items(body, path, what)
        collected.extend(items)
        if paginate == "link":
            next_url = response.links.get("next", {}).get("url")
            params = {}  # the next link carries its own query
            if next_url is None:
                return collected
        elif len(items) < size or (isinstance(body, dict) and body.get("more") is False):
            return collected
    raise UpstreamError(f"{what}: more than {MAX_PAGES} pages; narrow the query")
