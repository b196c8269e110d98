"""The baseline of figure 2: the smallest Flask app answering JSON, served the way ``govern serve``
serves govern (gunicorn, sync workers, the access log on), so that the ratio measures govern's
work and nothing else.

    python -m bench.bare_app --host 127.0.0.1 --port 8001 --workers 2
"""

from __future__ import annotations

import argparse

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return {"ok": True}


def main(argv=None) -> None:
    from gunicorn.app.base import BaseApplication

    parser = argparse.ArgumentParser(prog="python -m bench.bare_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    class _App(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("workers", args.workers)
            self.cfg.set("accesslog", "-")

        def load(self):
            return app

    _App().run()


if __name__ == "__main__":
    main()
