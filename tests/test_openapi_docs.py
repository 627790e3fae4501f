"""The docs pages under /schema load their JavaScript and CSS from the service itself: over
plain HTTP every asset they name is same-origin and served, and in headless Chromium with
every other host unresolvable the pages render the API's operations without one request
leaving the service."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright

from helpers import CHROMIUM, CHROMIUM_ARGS, Gateway
from snapshots.api.docs import ASSETS_DIR
from snapshots.config import JobsConfig

StartGateway = Callable[[JobsConfig], Gateway]
PAGES = ("/schema", "/schema/redoc", "/schema/swagger")
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css"}
# Operations of several routes, as their summaries read in the OpenAPI document.
SUMMARIES = (
    "The latest snapshot of a key (or, with /history, its versions)",
    "Versions of a key, newest first (the whole rest of the path is the key)",
    "Force a refresh of a key (the whole rest of the path is the key)",
)
# Only the loopback address resolves; a request to any other host fails at once.
OFFLINE_ARGS = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]


@pytest.fixture
def gateway(start_gateway: StartGateway, make_config: Callable[..., JobsConfig]) -> Gateway:
    return start_gateway(make_config(keys=("PSCH001",)))


def test_docs_pages_name_only_same_origin_assets_and_each_is_served(gateway: Gateway) -> None:
    assets: set[str] = set()
    for path in PAGES:
        page = gateway.http.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html")
        head = page.text.split("<body>", 1)[0]  # the body is the API document itself
        urls = re.findall(r"""(?:src|href)=["']([^"']*)["']""", head)
        assert urls, path
        for url in urls:
            parts = urlsplit(url)
            assert not parts.netloc, f"{path} loads {url} from another host"
            assert parts.scheme in ("", "data"), url
            if not parts.scheme:
                assets.add(parts.path)
        assert "googleapis" not in page.text  # no web fonts from Google

    assert assets == {
        "/schema/assets/redoc.standalone.js",
        "/schema/assets/swagger-ui-bundle.js",
        "/schema/assets/swagger-ui-standalone-preset.js",
        "/schema/assets/swagger-ui.css",
    }
    for asset in assets:
        answer = gateway.http.get(asset)
        assert answer.status_code == 200, asset
        assert answer.headers["content-type"].startswith(CONTENT_TYPES[Path(asset).suffix])
        assert answer.content == (ASSETS_DIR / Path(asset).name).read_bytes()
    # The UIs whose assets are not vendored are gone rather than loading from a CDN.
    assert gateway.http.get("/schema/rapidoc").status_code == 404
    assert gateway.http.get("/schema/elements").status_code == 404
    assert gateway.http.get("/schema/assets/../docs.py").status_code == 404


def test_browser_renders_the_docs_offline_with_no_request_off_the_service(
    gateway: Gateway,
) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed: apt-get install chromium")
    service = urlsplit(gateway.server.url).netloc
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=OFFLINE_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.goto(gateway.server.url + "/schema")
            for summary in SUMMARIES:  # Redoc's operation headings
                expect(page.locator("h2", has_text=summary).first).to_be_visible()
            redoc_operations = page.locator("[data-section-id^='operation/']").count()

            page.goto(gateway.server.url + "/schema/swagger")
            for summary in SUMMARIES:
                expect(
                    page.locator(".opblock-summary-description", has_text=summary).first
                ).to_be_attached()
            swagger_operations = page.locator(".opblock").count()
        finally:
            browser.close()

    elsewhere = [
        url
        for url in requested
        if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).netloc != service
    ]
    assert elsewhere == []
    assert redoc_operations >= 10
    assert swagger_operations >= 10
