"""Serving the fake with werkzeug's threaded server, in a background thread or in the foreground."""

from __future__ import annotations

import socket
import struct
import threading
from types import TracebackType

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import API_PREFIX, create_app, get_store, start_webhooks
from .config import FakePlanetConfig
from .faults import RESET_ENVIRON_KEY
from .store import FakePlanetStore

# How often serve_forever checks for stop(); small so stopping a test server is quick.
_POLL_INTERVAL = 0.05
# Seconds a connection may wait for the client's next bytes (a stalled body, an idle keep-alive) before
# it is closed, so a client that never finishes its request holds no thread for long.
READ_TIMEOUT_SECONDS = 30.0


class _RequestHandler(WSGIRequestHandler):
    # Planet speaks HTTP/1.1. The fake still never sends chunked bodies: every response has a length.
    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT_SECONDS  # socketserver applies it to every read and write of the connection

    def run_wsgi(self) -> None:
        super().run_wsgi()
        if self.environ.get(RESET_ENVIRON_KEY):
            # A zero linger timeout makes close() abortive: the client gets a TCP RST, not a FIN.
            # rfile is the last other reference to the socket; it must go too for close() to be real.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
            self.close_connection = True


class _QuietRequestHandler(_RequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """One line per request drowns test output; errors are still logged."""


def make_fake_server(host: str, port: int, app: Flask, verbose: bool = False) -> BaseWSGIServer:
    handler = _RequestHandler if verbose else _QuietRequestHandler
    return make_server(host, port, app, threaded=True, request_handler=handler)


def serve_forever(server: BaseWSGIServer) -> None:
    server.serve_forever(poll_interval=_POLL_INTERVAL)


class FakePlanetServer:
    """A running fake: `url` is the API root to give `planet.Planet(base_url=...)`, `base_url` the
    `/compute/ops` base for `OrdersClient`, the CLI's `-u`, or our own client."""

    def __init__(self, server: BaseWSGIServer, app: Flask) -> None:
        self._server = server
        self.app = app
        self._thread = threading.Thread(target=serve_forever, args=(server,), name="planet-fake", daemon=True)
        self._thread.start()
        self._webhooks = start_webhooks(app, self.base_url)

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    @property
    def base_url(self) -> str:
        return self.url + API_PREFIX

    @property
    def store(self) -> FakePlanetStore:
        return get_store(self.app)

    def stop(self) -> None:
        self._webhooks.stop()
        # shutdown() returns once serve_forever has stopped; werkzeug's serve_forever then closes the socket.
        self._server.shutdown()
        self._thread.join()

    def __enter__(self) -> FakePlanetServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_in_thread(
    host: str = "127.0.0.1", port: int = 0, config: FakePlanetConfig | None = None, verbose: bool = False
) -> FakePlanetServer:
    """Start a fake on `port` (0 picks a free one) and return once it accepts connections."""
    app = create_app(config)
    return FakePlanetServer(make_fake_server(host, port, app, verbose), app)
