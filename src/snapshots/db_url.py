"""`snapshots db-url`: the libpq connection string of the service's database for analysts' tools
(psql, DBeaver, Grafana), its password left out unless asked for."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy.engine import URL, make_url

from snapshots import embedded_tcp
from snapshots.config import Settings
from snapshots.database import EMBEDDED_DATABASE, libpq_url, sqlalchemy_url
from snapshots.embedded import server_address


@dataclass(frozen=True)
class AnalystUrl:
    """A connection string, and whether a password was left out of it."""

    url: str
    password_omitted: bool


class NotRunning(Exception):
    """The embedded PostgreSQL is not running, so it has no address to give."""


def analyst_url(settings: Settings, show_password: bool) -> AnalystUrl:
    """SNAPSHOTS_DATABASE_URL in libpq form, or where the running embedded PostgreSQL
    listens: on 127.0.0.1 when it has a TCP port (with its password), else its Unix socket."""
    if settings.database_url:
        url = make_url(libpq_url(sqlalchemy_url(settings.database_url)))
        omitted = url.password is not None and not show_password
        if omitted:  # URL.set() takes None for "unchanged", so build it anew
            url = URL.create(
                url.drivername, url.username, None, url.host, url.port, url.database, url.query
            )
        return AnalystUrl(url.render_as_string(hide_password=False), omitted)
    pgdata = (settings.data_dir / "pgdata").expanduser().resolve()
    address = server_address(pgdata)
    if address is None:
        raise NotRunning(
            f"the embedded PostgreSQL in {pgdata} is not running; start the service "
            "(`snapshots serve`) first, or use `snapshots sql`, which starts it"
        )
    if address.tcp_host is None:
        return AnalystUrl(address.uri(EMBEDDED_DATABASE), password_omitted=False)
    host = embedded_tcp.LISTEN_ADDRESS  # the only address the service has it listen on
    user = embedded_tcp.USER
    if show_password:
        secret = embedded_tcp.password(pgdata, create=False)
        if secret is not None:
            user += ":" + quote(secret, safe="")
    return AnalystUrl(
        f"postgresql://{user}@{host}:{address.port}/{EMBEDDED_DATABASE}",
        password_omitted=not show_password,
    )
