"""The OpenAPI document and its docs pages under /schema, with their JavaScript and CSS served
from this package (`static/openapi/`, see VENDORED.md there) instead of a CDN."""

from __future__ import annotations

from pathlib import Path

from litestar.datastructures import CacheControlHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import (
    JsonRenderPlugin,
    RedocRenderPlugin,
    SwaggerRenderPlugin,
    YamlRenderPlugin,
)
from litestar.openapi.spec import Components, SecurityScheme
from litestar.router import Router
from litestar.static_files import create_static_files_router

from snapshots import __version__

ASSETS_DIR = Path(__file__).parent / "static" / "openapi"
ASSETS_PATH = "/schema/assets"
# An empty icon: without one the browser asks for /favicon.ico, Litestar's default is on a CDN.
NO_FAVICON = "<link rel='icon' href='data:,'>"


def openapi_config() -> OpenAPIConfig:
    """Redoc at /schema (and /schema/redoc), Swagger UI at /schema/swagger, the document as
    JSON and YAML. Google Fonts are off: Redoc falls back to the system's fonts."""
    return OpenAPIConfig(
        title="snapshots",
        version=__version__,
        path="/schema",
        # The bearer scheme routes in qontract-api's shape declare (as qontract-api does).
        components=Components(
            security_schemes={"HTTPBearer": SecurityScheme(type="http", scheme="bearer")}
        ),
        render_plugins=[
            RedocRenderPlugin(
                js_url=f"{ASSETS_PATH}/redoc.standalone.js",
                google_fonts=False,
                favicon=NO_FAVICON,
            ),
            SwaggerRenderPlugin(
                js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
                css_url=f"{ASSETS_PATH}/swagger-ui.css",
                standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
                favicon=NO_FAVICON,
            ),
            JsonRenderPlugin(),
            YamlRenderPlugin(),
        ],
    )


def assets_router() -> Router:
    """The vendored files, public like the rest of /schema, cached by browsers for a day."""
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[ASSETS_DIR],
        opt={"role": None},
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=86400, public=True),
        name="openapi_assets",
    )
