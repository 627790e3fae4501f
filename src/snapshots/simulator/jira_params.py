"""Jira search parameters, from the query string (GET) or the JSON body (POST) alike."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import State


@dataclass(frozen=True)
class SearchParams:
    """jql and paging; `fields` None means every field."""

    jql: str
    start_at: int = 0
    max_results: int | None = None
    fields: list[str] | None = None
    next_page_token: str | None = None


def _non_negative(name: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not str(value).isdigit():
        raise ValueError(f"The '{name}' parameter must be a non-negative integer, not {value!r}.")
    return int(value)


def _fields(values: Any) -> list[str] | None:
    """`fields` as a list, whether sent repeated, comma-separated, or as a JSON list."""
    if values is None:
        return None
    items = [values] if isinstance(values, str) else list(values)
    return [f.strip() for item in items for f in str(item).split(",") if f.strip()]


async def _raw_params(request: Request[Any, Any, State]) -> dict[str, Any]:
    if request.method == "POST":
        body = json.loads(await request.body() or b"{}")
        if not isinstance(body, dict):
            raise ValueError("The request body must be a JSON object.")
        return body
    query = request.query_params
    raw: dict[str, Any] = {k: query.get(k) for k in ("jql", "startAt", "maxResults")}
    raw["nextPageToken"] = query.get("nextPageToken")
    raw["fields"] = query.getall("fields") if "fields" in query else None
    return raw


async def search_params(request: Request[Any, Any, State]) -> SearchParams | str:
    """The search parameters, or the message of Jira's 400 when they cannot be read."""
    try:
        raw = await _raw_params(request)
        return SearchParams(
            jql=str(raw.get("jql") or ""),
            start_at=_non_negative("startAt", raw.get("startAt")) or 0,
            max_results=_non_negative("maxResults", raw.get("maxResults")),
            fields=_fields(raw.get("fields")),
            next_page_token=raw.get("nextPageToken") or None,
        )
    except ValueError as e:  # json.JSONDecodeError is a ValueError
        return str(e)
