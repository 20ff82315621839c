"""`python -m planet_fake`: run the fake Planet Orders API in the foreground."""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

from .app import API_PREFIX, create_app, get_store, start_webhooks
from .config import FakePlanetConfig
from .server import make_fake_server, serve_forever
from .store import FakePlanetStore

DEFAULT_PORT = 8001


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m planet_fake", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PLANET_FAKE_PORT", DEFAULT_PORT)))
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument(
        "--state-dir", type=Path, help="keep the orders in DIR/planet-fake.pickle across restarts"
    )
    args = parser.parse_args(argv)

    config = FakePlanetConfig.from_env()
    app = create_app(config)
    server = make_fake_server(args.host, args.port, app, verbose=args.verbose)
    print(f"Fake Planet Orders API on http://{args.host}:{server.port}{API_PREFIX}", flush=True)
    start_webhooks(app, f"http://{args.host}:{server.port}{API_PREFIX}")
    if args.state_dir is None:
        serve_forever(server)
        return
    store: FakePlanetStore = get_store(app)
    path = args.state_dir / "planet-fake.pickle"
    if path.exists():
        print(f"{store.import_state(path.read_bytes())} orders restored from {path}", flush=True)
    stop = threading.Event()

    def save() -> None:
        args.state_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        partial.write_bytes(store.export_state())
        partial.replace(path)  # whole or absent, even after a kill

    def save_every_two_seconds() -> None:
        while not stop.wait(2):
            save()

    threading.Thread(target=save_every_two_seconds, daemon=True).start()
    try:
        serve_forever(server)
    finally:
        stop.set()
        save()


if __name__ == "__main__":
    main()
