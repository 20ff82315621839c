"""`python -m planet_fake`: run the fake Planet Orders API in the foreground."""

from __future__ import annotations

import argparse
import os

from .app import API_PREFIX, create_app
from .config import FakePlanetConfig
from .server import make_fake_server, serve_forever

DEFAULT_PORT = 8001


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m planet_fake", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PLANET_FAKE_PORT", DEFAULT_PORT)))
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    config = FakePlanetConfig.from_env()
    server = make_fake_server(args.host, args.port, create_app(config), verbose=args.verbose)
    print(f"Fake Planet Orders API on http://{args.host}:{server.port}{API_PREFIX}", flush=True)
    serve_forever(server)


if __name__ == "__main__":
    main()
