"""The status page at `/`: its HTML over plain HTTP, and in headless Chromium its token prompt
(when the API has tokens), the data it loads with the token, and its refresh buttons."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

from helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SIM_TOKEN,
    Gateway,
    Simulator,
    runs_with_outcome,
    wait_for,
)
from snapshots.api.auth import create_token
from snapshots.config import JobsConfig, load_jobs

StartGateway = Callable[[JobsConfig], Gateway]
PD = "pagerduty.schedule_users"
# Set to a path (e.g. /tmp/status.png) to look at the page as the browser test leaves it.
SCREENSHOT = os.environ.get("STATUS_PAGE_SCREENSHOT")
# An upstream error with markup in it: must reach the page as text, never as HTML.
UPSTREAM_ERROR = '<img src=x> pagerduty answered 500 & <script>alert("x")</script> ZX-ERR-7'


@pytest.fixture
def config(tmp_path: Path, simulator: Simulator) -> Callable[..., JobsConfig]:
    """PagerDuty with one key and no retries (a 500 fails at once), and a disabled GitHub dataset."""

    def make(api: str = "") -> JobsConfig:
        path = tmp_path / "jobs.toml"
        path.write_text(
            f"""
[api]
{api}

[providers.pagerduty]
base_url = "{simulator.url}/pagerduty"
token = "{SIM_TOKEN}"
budget = "900/60s"
max_retries = 0

[datasets."{PD}"]
min_refresh_interval = "1ms"
keys = ["PSCH001"]

[datasets."github.repo"]
"""
        )
        return load_jobs(path, env={})

    return make


def _failing_key(
    start_gateway: StartGateway,
    config: JobsConfig,
    simulator: Simulator,
    db: psycopg.Connection[Any],
    token: str | None = None,
) -> Gateway:
    """A gateway whose PSCH001 was fetched once, then failed a forced refresh (HTTP 500)."""
    gateway = start_gateway(config)
    wait_for(lambda: runs_with_outcome(db, "changed") == 1)
    simulator.add_fault("pagerduty", "error", status=500, count=20)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    failed = gateway.http.post(
        f"/api/v1/snapshots/{PD}/PSCH001/refresh", params={"wait": 10}, headers=headers
    )
    assert failed.status_code == 502, failed.text
    return gateway


def _demand_runs(db: psycopg.Connection[Any], key: str) -> int:
    row = db.execute(
        "SELECT count(*) FROM refresh_runs WHERE key = %s AND trigger = 'demand'", (key,)
    ).fetchone()
    return int(row[0]) if row else 0


def test_status_page_shows_datasets_failing_keys_and_budgets_with_data_escaped(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    gateway = _failing_key(start_gateway, config(), simulator, db)

    page = gateway.http.get("/")
    db.execute(
        "UPDATE dataset_keys SET last_error = %s WHERE key = 'PSCH001'",
        ('<script>alert("x")</script> & more',),
    )
    escaped = gateway.http.get("/").text

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "nonce-" in page.headers["content-security-policy"]
    text = page.text
    assert f'<tr class="red" data-dataset="{PD}">' in text
    assert '<tr class="grey" data-dataset="github.repo">' in text
    assert "disabled: provider github has no token" in text
    assert 'class="failing" data-dataset="pagerduty.schedule_users" data-key="PSCH001"' in text
    assert "500" in text.split('data-key="PSCH001"')[1].split("</tr>")[0]  # the key's last error
    assert f'data-url="/api/v1/refresh/{PD}/PSCH001"' in text
    assert f'data-url="/api/v1/datasets/{PD}/refresh"' in text
    assert '<meter min="0" max="900"' in text  # the pagerduty budget gauge
    assert 'data-auth="open"' in text
    assert 'id="token"' not in text  # no token field when the service has no tokens
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in escaped
    assert '<script>alert("x")' not in escaped
    assert gateway.http.get("/schema/openapi.json").json()["paths"].get("/") is None


def test_status_page_in_token_mode_shows_no_dataset_key_or_error_without_a_token(
    tmp_path: Path,
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    tokens = tmp_path / "tokens"
    operator = create_token(tokens, "oncall", "operator")
    gateway = _failing_key(
        start_gateway, config(f'tokens_file = "{tokens}"'), simulator, db, token=operator
    )
    db.execute("UPDATE dataset_keys SET last_error = %s WHERE key = 'PSCH001'", (UPSTREAM_ERROR,))
    keys = gateway.http.get(
        f"/api/v1/datasets/{PD}/keys", headers={"Authorization": f"Bearer {operator}"}
    )
    assert keys.json()[0]["last_error"] == UPSTREAM_ERROR  # the JSON API has it, behind a token

    page = gateway.http.get("/")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "nonce-" in csp
    assert "connect-src 'self'" in csp
    assert "'unsafe-inline'" not in csp
    text = page.text
    assert 'data-auth="token"' in text
    assert 'id="token"' in text  # it asks for a token
    for secret in (PD, "github.repo", "PSCH001", "ZX-ERR-7", "pagerduty", "github", "<meter"):
        assert secret not in text
    assert gateway.http.get("/api/v1/datasets").status_code == 401


def _rows(page: Page) -> Locator:
    return page.locator("tr[data-dataset], tr[data-provider]")


def test_browser_in_token_mode_asks_for_a_token_shows_the_data_and_refreshes_as_operator(
    tmp_path: Path,
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed: apt-get install chromium")
    tokens = tmp_path / "tokens"
    reader = create_token(tokens, "dashboard", "reader")
    operator = create_token(tokens, "oncall", "operator")
    gateway = _failing_key(
        start_gateway, config(f'tokens_file = "{tokens}"'), simulator, db, token=operator
    )
    simulator.clear_faults("pagerduty")
    db.execute("UPDATE dataset_keys SET last_error = %s WHERE key = 'PSCH001'", (UPSTREAM_ERROR,))
    demand_before = _demand_runs(db, "PSCH001")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(gateway.server.url + "/")
            message = page.locator("#message")
            field = page.get_by_label("Token")
            show = page.get_by_role("button", name="Show")
            row = page.locator('tr.failing[data-key="PSCH001"]')
            answer = row.locator("output")
            expect(message).to_contain_text("enter a reader or operator token")
            expect(_rows(page)).to_have_count(0)

            field.fill("snp_not-a-token")
            show.click()
            expect(message).to_contain_text("401")
            expect(message).to_contain_text("not valid")
            expect(_rows(page)).to_have_count(0)

            field.fill(reader)
            show.click()
            expect(row.locator("td.error")).to_have_text(UPSTREAM_ERROR)  # text, not HTML
            expect(row.locator("img, script")).to_have_count(0)
            expect(page.locator(f'tr.red[data-dataset="{PD}"]')).to_contain_text("1 failing")
            expect(page.locator('tr.grey[data-dataset="github.repo"]')).to_contain_text(
                "disabled: provider github has no token"
            )
            expect(page.locator('tr[data-provider="pagerduty"] meter')).to_have_attribute(
                "max", "900"
            )
            expect(message).to_be_empty()

            row.get_by_role("button", name="Refresh").click()  # a reader may not
            expect(answer).to_contain_text("needs an operator token")

            page.reload()  # the token is kept for the session
            expect(row.locator("td.error")).to_have_text(UPSTREAM_ERROR)

            on_screen = page.locator("body").get_attribute("data-loads")
            field.fill(operator)
            show.click()
            # The page re-rendered with the new token: a click on the old table's button would
            # have its answer replaced by the new table.
            expect(page.locator("body")).not_to_have_attribute("data-loads", on_screen or "")
            expect(answer).to_be_empty()
            row.get_by_role("button", name="Refresh").click()
            expect(answer).to_contain_text("started")

            if SCREENSHOT:
                page.screenshot(path=SCREENSHOT, full_page=True)
            stored = page.evaluate("sessionStorage.getItem('snapshots.token')")
        finally:
            browser.close()

    assert stored == operator
    wait_for(lambda: _demand_runs(db, "PSCH001") == demand_before + 1)


def test_browser_in_open_mode_refreshes_a_failing_key_without_a_token(
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed: apt-get install chromium")
    gateway = _failing_key(start_gateway, config(), simulator, db)
    simulator.clear_faults("pagerduty")
    demand_before = _demand_runs(db, "PSCH001")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(gateway.server.url + "/")
            row = page.locator('tr.failing[data-key="PSCH001"]')
            expect(row).to_contain_text("500")
            expect(page.get_by_label("Token")).to_have_count(0)
            row.get_by_role("button", name="Refresh").click()
            expect(row.locator("output")).to_contain_text("started")
        finally:
            browser.close()

    wait_for(lambda: _demand_runs(db, "PSCH001") == demand_before + 1)
