"""The status page at `/`: datasets, failing keys and provider budgets.

The route is public, because a browser sends no bearer token on page load. In open mode (no
tokens) the page is rendered on the server, everything taken from data escaped with
`html.escape` (errors can carry upstream text). When the API has tokens the page is a shell
with no data in it: its script asks for a reader or operator token, keeps it in session
storage and draws the same tables from the JSON API, so what readers may see stays behind the
reader role. Refresh buttons call the JSON API with that token (operators only).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote

from litestar import MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency

from snapshots import __version__
from snapshots.api.auth import TokenStore
from snapshots.api.datasets import dataset_body, key_body
from snapshots.api.schemas import DatasetBody, KeyBody
from snapshots.api.status_assets import SCRIPT, STYLE
from snapshots.clock import utcnow
from snapshots.published import ProviderView, PublishedBudgets
from snapshots.registry import Registry
from snapshots.store import Store

RELOAD_SECONDS = 15
FAILING = ("failed", "rejected")


@get("/", opt={"role": None}, include_in_schema=False, media_type=MediaType.HTML)
async def status_page(
    request: Request[Any, Any, State],
    registry: NamedDependency[Registry],
    store: NamedDependency[Store],
    budgets: NamedDependency[PublishedBudgets],
) -> Response[str]:
    """The service at a glance, reloading itself every 15 s."""
    tokens: TokenStore = request.app.state.tokens
    nonce = secrets.token_urlsafe(16)
    page = await render(registry, store, budgets, nonce) if tokens.open else shell(nonce)
    csp = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    headers = {"Content-Security-Policy": csp, "Cache-Control": "no-store"}
    return Response(page, media_type=MediaType.HTML, headers=headers)


async def render(registry: Registry, store: Store, budgets: PublishedBudgets, nonce: str) -> str:
    """The whole page in open mode; the data comes from the same helpers as `/api/v1/datasets`."""
    summaries = await store.dataset_summaries()
    views = await budgets.views()
    datasets = [
        dataset_body(d, summaries.get(n), views) for n, d in sorted(registry.datasets.items())
    ]
    failing: list[tuple[DatasetBody, KeyBody]] = []
    for dataset in datasets:
        if dataset.failing:
            keys = [key_body(k, dataset.ttl_seconds) for k in await store.keys_of(dataset.dataset)]
            failing += [(dataset, k) for k in keys if k.last_outcome in FAILING]
    now = utcnow()
    return f"""{_head(nonce, f'<noscript><meta http-equiv="refresh" content="{RELOAD_SECONDS}"></noscript>')}
<body data-auth="open" data-reload-seconds="{RELOAD_SECONDS}">
<header><h1>snapshots</h1>
<span class="meta">{escape(__version__)} · {now:%Y-%m-%d %H:%M:%S} UTC · reloads every {RELOAD_SECONDS} s</span>
<span class="muted">open mode: refreshes need no token</span></header>
<h2>Datasets</h2>
{_datasets_table(datasets)}
<h2>Failing keys ({len(failing)})</h2>
{_failing_table(failing, now)}
<h2>Provider budgets</h2>
{_providers_table(registry, views)}
<script nonce="{nonce}">{SCRIPT}</script>
</body></html>
"""


def shell(nonce: str) -> str:
    """The page in token mode: no data, only the token prompt and empty sections that the
    script fills from the JSON API with the reader's or operator's token."""
    return f"""{_head(nonce, "")}
<body data-auth="token" data-reload-seconds="{RELOAD_SECONDS}">
<header><h1>snapshots</h1>
<span class="meta">{escape(__version__)} · <span id="updated">not loaded yet</span> · reloads every {RELOAD_SECONDS} s</span>
<form id="auth"><label>Token <input id="token" type="password" autocomplete="off" size="24"
placeholder="snp_…"></label> <button type="submit">Show</button>
<button type="button" id="forget">Forget</button></form></header>
<p id="message" role="alert"></p>
<noscript><p>This service has API tokens, so this page loads its data with JavaScript and a
token. Without JavaScript use <code>snapshots status</code> or the JSON API.</p></noscript>
<main id="data" hidden>
<h2>Datasets</h2>
<div id="datasets"></div>
<h2>Failing keys (<span id="failing-count">0</span>)</h2>
<div id="failing"></div>
<h2>Provider budgets</h2>
<div id="providers"></div>
</main>
<script nonce="{nonce}">{SCRIPT}</script>
</body></html>
"""


def _head(nonce: str, extra: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>snapshots status</title><link rel="icon" href="data:,">
{extra}
<style nonce="{nonce}">{STYLE}</style></head>"""


def _table(head: Iterable[str], rows: list[str], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{empty}</p>'
    cells = "".join(f"<th>{h}</th>" for h in head)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _button(url: str, label: str) -> str:
    return f'<button type="button" data-url="{escape(url)}">{label}</button><output aria-live="polite"></output>'


def _colour(dataset: DatasetBody) -> tuple[str, str]:
    """(colour, what it means): grey disabled, red some failing, amber some stale, else green."""
    if not dataset.enabled:
        return "grey", f"disabled: {dataset.disabled_reason}"
    if dataset.failing:
        return "red", f"{dataset.failing} failing"
    if dataset.stale:
        return "amber", f"{dataset.stale} stale"
    return "green", "all fresh" if dataset.keys else "no keys yet"


def _datasets_table(datasets: list[DatasetBody]) -> str:
    rows = []
    for d in datasets:
        colour, meaning = _colour(d)
        action = (
            _button(f"/api/v1/datasets/{quote(d.dataset, safe='')}/refresh", "Refresh all")
            if d.enabled and d.keys
            else ""
        )
        rows.append(
            f'<tr class="{colour}" data-dataset="{escape(d.dataset)}">'
            f'<td><span class="dot"></span>{escape(d.dataset)}</td><td>{escape(meaning)}</td>'
            f"<td>{escape(d.provider)}</td><td>{_span(d.ttl_seconds)}</td>"
            f'<td class="num">{d.keys}</td><td class="num">{d.fresh}</td>'
            f'<td class="num">{d.stale}</td><td class="num">{d.failing}</td><td>{action}</td></tr>'
        )
    head = ("Dataset", "State", "Provider", "TTL", "Keys", "Fresh", "Stale", "Failing", "")
    return _table(head, rows, "No datasets are configured.")


def _failing_table(failing: list[tuple[DatasetBody, KeyBody]], now: datetime) -> str:
    rows = []
    for dataset, key in failing:
        url = f"/api/v1/refresh/{quote(dataset.dataset, safe='')}/{quote(key.key, safe='/')}"
        when = (
            _span((now - key.last_refresh_at).total_seconds()) + " ago"
            if key.last_refresh_at
            else ""
        )
        rows.append(
            f'<tr class="failing" data-dataset="{escape(dataset.dataset)}" data-key="{escape(key.key)}">'
            f"<td>{escape(dataset.dataset)}</td><td>{escape(key.key)}</td>"
            f"<td>{escape(key.last_outcome or '')}</td><td>{when}</td>"
            f'<td class="error">{escape(key.last_error or "")}</td>'
            f"<td>{_button(url, 'Refresh') if dataset.enabled else ''}</td></tr>"
        )
    head = ("Dataset", "Key", "Outcome", "Last refresh", "Last error", "")
    return _table(head, rows, "No failing keys.")


def _providers_table(registry: Registry, views: Mapping[str, ProviderView]) -> str:
    """Providers that serve a dataset: budget use, tokens left, pause, and the plan's stretch,
    as the active worker last published them."""
    used_by = {d.provider.name for d in registry.datasets.values()}
    rows = []
    for name, provider in sorted(registry.providers.items()):
        if name not in used_by:
            continue
        view = views.get(name)
        if view is None:
            rows.append(
                f'<tr class="grey" data-provider="{escape(name)}"><td>{escape(name)}</td>'
                '<td colspan="4" class="muted">no active worker has published this budget yet'
                "</td></tr>"
            )
            continue
        budget = view.state.budget
        if budget.limit:
            limit = budget.limit
            gauge = (
                f'<meter min="0" max="{limit}" low="{limit * 0.7:g}" high="{limit * 0.9:g}" '
                f'optimum="0" value="{budget.used_in_period}"></meter> '
                f"{budget.used_in_period} / {limit} per {_span(budget.period_seconds or 0)}"
            )
        else:
            gauge = f'<span class="muted">unlimited</span> ({budget.used_in_period} used)'
        notes = []
        if provider.disabled_reason:
            notes.append(f"disabled: {provider.disabled_reason}")
        if budget.paused_for_seconds > 0:
            notes.append(
                f"paused for {budget.paused_for_seconds:.1f} s: {budget.pause_reason or ''}"
            )
        plan = view.state.plan
        if plan is not None and plan.stretch > 1:
            notes.append(f"intervals stretched x{plan.stretch:.2f} to fit the budget")
        waiting = sum(budget.waiting.values())
        rows.append(
            f'<tr class="{"grey" if provider.disabled_reason else ""}" data-provider="{escape(name)}">'
            f"<td>{escape(name)}</td><td>{gauge}</td>"
            f'<td class="num">{"" if budget.tokens_left is None else budget.tokens_left}</td>'
            f'<td class="num">{waiting}</td><td>{escape("; ".join(notes))}</td></tr>'
        )
    return _table(
        ("Provider", "Used in period", "Tokens left", "Waiting", "Notes"),
        rows,
        "No providers in use.",
    )


def _span(seconds: float) -> str:
    """A duration in its largest unit, to one decimal: 45s, 5m, 2.5h, 3d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{round(seconds / size, 1):g}{unit}"
    return f"{round(seconds, 1):g}s"
