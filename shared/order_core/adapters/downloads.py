"""Fetching result files from Planet: streamed, with every redirect hop checked against an allow-list."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from order_core.adapters.planet_client import parse_retry_after
from order_core.errors import (
    DownloadRefused,
    LinkExpired,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)

MAX_REDIRECTS = 3


class Pacer:
    """Spaces out request starts: Planet allows 5 downloads per second per API key."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second if per_second > 0 else 0.0
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)


@dataclass
class DownloadStream:
    response: requests.Response
    chunk_bytes: int

    @property
    def content_length(self) -> int | None:
        value = self.response.headers.get("Content-Length")
        return int(value) if value and value.isdigit() else None

    def chunks(self) -> Iterator[bytes]:
        try:
            yield from self.response.iter_content(chunk_size=self.chunk_bytes)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise UpstreamUnavailable(f"download interrupted: {type(exc).__name__}") from exc


class ResultDownloader:
    """Opens result links as streams; follows at most three redirects, each one re-checked."""

    def __init__(
        self,
        allowed_hosts: frozenset[str],
        *,
        allow_http: bool = False,
        chunk_bytes: int = 1024 * 1024,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        per_second: float = 4.5,
    ) -> None:
        self._allowed_hosts = allowed_hosts
        self._allow_http = allow_http
        self._chunk_bytes = chunk_bytes
        self._session = session or requests.Session()
        self._timeout = timeout
        self._pacer = Pacer(per_second)

    def check_url(self, url: str) -> None:
        parts = urlsplit(url)
        schemes = {"https", "http"} if self._allow_http else {"https"}
        if parts.scheme not in schemes:
            raise DownloadRefused(f"refusing to download from scheme {parts.scheme or '(none)'!r}")
        host = (parts.hostname or "").lower()
        if host not in self._allowed_hosts:
            raise DownloadRefused(f"refusing to download from host {host!r}: not in the allowed hosts")

    @contextmanager
    def open(self, url: str, headers: dict[str, str] | None = None) -> Iterator[DownloadStream]:
        response = self._follow(url, headers or {})
        try:
            yield DownloadStream(response, self._chunk_bytes)
        finally:
            response.close()

    def _follow(self, url: str, headers: dict[str, str]) -> requests.Response:
        self._pacer.wait()
        for _hop in range(MAX_REDIRECTS + 1):
            self.check_url(url)
            try:
                response = self._session.get(
                    url, headers=headers, stream=True, allow_redirects=False, timeout=self._timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise UpstreamUnavailable(f"download failed: {type(exc).__name__}") from exc
            if response.is_redirect:
                location = response.headers.get("Location", "")
                response.close()
                url = urljoin(url, location)
                continue
            _raise_for_status(response)
            return response
        raise DownloadRefused(f"more than {MAX_REDIRECTS} redirects")


def _raise_for_status(response: Any) -> None:
    status = response.status_code
    if status < 400:
        return
    response.close()
    if status in (401, 403, 410):
        raise LinkExpired(f"download link refused with {status}", status=status)
    if status == 429:
        raise UpstreamRateLimited(
            "download rate limited", retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    if status >= 500:
        raise UpstreamUnavailable(f"download answered {status}", status=status)
    raise UpstreamError(f"download answered {status}", status=status)
