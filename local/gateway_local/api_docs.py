"""The API's OpenAPI document and a Swagger UI, served by the local HTTP front.

* ``GET /compute/ops/openapi.json`` — ``docs/openapi.json`` as committed, with this stack's own URL as the
  first server, so "Try it out" in any OpenAPI tool calls the running stack;
* ``GET /compute/ops/docs`` — Swagger UI for it (``?format=json``: the document again). The UI's JavaScript
  and CSS are the copies Powertools ships (``enable_swagger`` serves the same ones), so it works offline.

Served by the front and not by ApiFunction: the document is a build artefact of the repository
(``make openapi``), not something the function should build or carry at run time; in AWS publish the same
file wherever the API's consumers read documentation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

PREFIX = "/compute/ops"
DOCUMENT_PATH = f"{PREFIX}/openapi.json"
UI_PATH = f"{PREFIX}/docs"
_ASSETS = {
    "swagger-ui-bundle.min.js": "application/javascript",
    "swagger-ui.min.css": "text/css",
}


class ApiDocs:
    """Answers the documentation paths; ``handle`` returns None for every other request."""

    def __init__(self, document: Path) -> None:
        self._document = document

    def handle(self, request: Request) -> Response | None:
        if request.method not in ("GET", "HEAD"):
            return None
        path = request.path.rstrip("/")
        if path == DOCUMENT_PATH or (path == UI_PATH and request.args.get("format") == "json"):
            document = self._load(request)
            if document is None:
                return _message(404, f"{self._document} not found: run `make openapi`")
            return Response(json.dumps(document, indent=2), content_type="application/json")
        if path == UI_PATH:
            return self._ui(request)
        if path.startswith(f"{UI_PATH}/"):
            return self._asset(path.removeprefix(f"{UI_PATH}/"))
        return None

    def _load(self, request: Request) -> dict[str, Any] | None:
        try:
            document: dict[str, Any] = json.loads(self._document.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        here = {"url": request.host_url.rstrip("/"), "description": "This local stack"}
        document["servers"] = [here, *(s for s in document.get("servers", []) if s.get("url") != here["url"])]
        return document

    def _ui(self, request: Request) -> Response:
        from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

        document = self._load(request)
        if document is None:
            return _message(404, f"{self._document} not found: run `make openapi`")
        html = generate_swagger_html(
            json.dumps(document).replace("</", "<\\/"),  # the document is inlined in a <script>
            f"{UI_PATH}/swagger-ui-bundle.min.js",
            f"{UI_PATH}/swagger-ui.min.css",
            swagger_base_url=UI_PATH,
            oauth2_config=None,
            persist_authorization=True,
        )
        return Response(html, content_type="text/html; charset=utf-8")

    def _asset(self, name: str) -> Response:
        if name not in _ASSETS:
            return _message(404, "Not found")
        from aws_lambda_powertools.event_handler.openapi import swagger_ui

        content = (Path(swagger_ui.__file__).parent / name).read_bytes()
        return Response(content, content_type=_ASSETS[name], headers={"Cache-Control": "max-age=86400"})


def _message(status: int, message: str) -> Response:
    return Response(json.dumps({"message": message}), status=status, content_type="application/json")
