"""The service for bench/read_path.py, plus a no-op route on the same server as the baseline."""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn
from litestar import get

from snapshots.api.app import create_app
from snapshots.config import load_jobs


@get("/noop", opt={"role": None}, sync_to_thread=False)
def noop() -> dict[str, bool]:
    """The cheapest JSON answer Litestar gives on this server: the baseline."""
    return {"ok": True}


def main() -> None:
    config_path, database_url, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    app = create_app(load_jobs(Path(config_path)), database_url)
    app.register(noop)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
