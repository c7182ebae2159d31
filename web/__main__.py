"""``python -m web``: serve the app with gunicorn on ``HOST:PORT`` from the settings.

Binding from the same Settings object that decides ``REQUIRE_AUTH`` keeps the two consistent: the default
without tokens is only ever served on 127.0.0.1. Run ``python -m web.cli migrate`` first on a fresh machine.
"""

from __future__ import annotations

import os
from typing import Any

from gunicorn.app.base import BaseApplication

from web.app import create_app
from web.core.settings import Settings


class _Gunicorn(BaseApplication):
    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings = settings
        self.workers = workers
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", f"{self.settings.host}:{self.settings.port}")
        self.cfg.set("workers", self.workers)
        self.cfg.set("threads", 4)
        self.cfg.set("timeout", 120)  # uploads of large images validate in the request
        self.cfg.set("accesslog", "-")

    def load(self) -> Any:
        return create_app(self.settings)


def main() -> None:
    settings = Settings.from_env()
    print(
        f"Serving on http://{settings.host}:{settings.port} "
        f"(authentication {'required' if settings.auth_required else 'OFF: loopback only'})",
        flush=True,
    )
    _Gunicorn(settings, workers=int(os.environ.get("WEB_WORKERS", "2"))).run()


if __name__ == "__main__":
    main()
