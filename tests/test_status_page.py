"""The status page at `/`: its HTML over plain HTTP, and its refresh button in headless Chromium."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import expect, sync_playwright

from helpers import SIM_TOKEN, Gateway, Simulator, runs_with_outcome, wait_for
from snapshots.api.auth import create_token
from snapshots.config import JobsConfig, load_jobs

StartGateway = Callable[[JobsConfig], Gateway]
PD = "pagerduty.schedule_users"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Set to a path (e.g. /tmp/status.png) to look at the page as the browser test leaves it.
SCREENSHOT = os.environ.get("STATUS_PAGE_SCREENSHOT")


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
min_refresh_interval = "10ms"
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
    assert f'data-url="/api/v1/snapshots/{PD}/PSCH001/refresh"' in text
    assert f'data-url="/api/v1/datasets/{PD}/refresh"' in text
    assert '<meter min="0" max="900"' in text  # the pagerduty budget gauge
    assert 'data-auth="open"' in text
    assert 'id="token"' not in text  # no token field when the service has no tokens
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in escaped
    assert '<script>alert("x")' not in escaped
    assert gateway.http.get("/schema/openapi.json").json()["paths"].get("/") is None


def test_browser_refreshes_a_failing_key_with_the_operator_token(
    tmp_path: Path,
    start_gateway: StartGateway,
    config: Callable[..., JobsConfig],
    simulator: Simulator,
    db: psycopg.Connection[Any],
) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed: apt-get install chromium")
    tokens = tmp_path / "tokens"
    operator = create_token(tokens, "oncall", "operator")
    gateway = _failing_key(
        start_gateway, config(f'tokens_file = "{tokens}"'), simulator, db, token=operator
    )
    simulator.clear_faults("pagerduty")
    demand_before = _demand_runs(db, "PSCH001")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(gateway.server.url + "/")
            row = page.locator('tr.failing[data-key="PSCH001"]')
            answer = row.locator("output")
            expect(row).to_be_visible()
            expect(row).to_contain_text("500")

            row.get_by_role("button", name="Refresh").click()  # no token yet
            expect(answer).to_contain_text("401 unauthorized")
            page.get_by_label("Operator token").fill(operator)
            row.get_by_role("button", name="Refresh").click()
            expect(answer).to_contain_text("started")

            if SCREENSHOT:
                page.screenshot(path=SCREENSHOT, full_page=True)
            stored = page.evaluate("sessionStorage.getItem('snapshots.token')")
        finally:
            browser.close()

    assert stored == operator
    wait_for(lambda: _demand_runs(db, "PSCH001") == demand_before + 1)
