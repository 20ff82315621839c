"""Fetching result files from Planet: streamed, ranged, and never from a place the gateway must not reach.

Result URLs come from a third party, so every request is checked twice:

- the URL, before it is sent and again for every redirect hop (at most three): ``https`` only (``http``
  too in local mode), a host on the allow-list, no user name or password in it;
- the address, when the connection is opened: the host is resolved once, every address it resolves to
  must be public (no loopback, private, link-local, shared, reserved or multicast address, IPv4-mapped
  and 6to4/Teredo addresses judged by the IPv4 address inside), and the socket connects to one of exactly
  those addresses. What was checked is what is used, so DNS rebinding cannot slip an address in between.
  TLS still verifies the certificate against the host name (SNI and Host header are unchanged).

Local mode (``ALLOW_HTTP_DOWNLOADS=true``) exists for the fake Planet on 127.0.0.1: it allows ``http`` and
loopback addresses, and only for hosts on the allow-list. Link-local (169.254.0.0/16, fe80::/10: the
metadata and credentials endpoints) and private addresses are refused in every mode.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPException
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError
from urllib3.util.connection import allowed_gai_family, create_connection

from order_core.adapters.planet_client import parse_retry_after
from order_core.errors import (
    DownloadRefused,
    LinkExpired,
    PacingUnavailable,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from order_core.observability import logger, metrics

if TYPE_CHECKING:
    from order_core.services.pacing import Pacer

MAX_REDIRECTS = 3
#: Planet allows 5 download requests per second per API key, counted over a sliding second. Our window is
#: a little longer so that network jitter never makes the sixth request land inside Planet's second.
RATE_WINDOW_SECONDS = 1.1
#: With the deployment's pacer: how far ahead a download books its slot, and the longest single sleep while
#: the endpoint is booked or held further than that.
DOWNLOAD_SLOT_HORIZON_SECONDS = 5.0

Resolver = Callable[..., list[tuple[Any, ...]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# --- what may be fetched ----------------------------------------------------------------------------------


class HostAllowList:
    """Exact host names, or ``*.example.com`` for any subdomain of example.com (not example.com itself).

    ``*`` alone allows every host name (a tenant's webhook): the address checks still apply to each.
    """

    def __init__(self, hosts: Iterable[str]) -> None:
        cleaned = [h.strip().lower().rstrip(".") for h in hosts if h.strip()]
        self._any = "*" in cleaned
        self._exact = frozenset(h for h in cleaned if not h.startswith("*."))
        self._suffixes = tuple(h[1:] for h in cleaned if h.startswith("*."))

    def allows(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return (
            self._any
            or host in self._exact
            or any(host.endswith(s) and len(host) > len(s) for s in self._suffixes)
        )

    def __repr__(self) -> str:
        return f"HostAllowList({sorted(self._exact) + ['*' + s for s in self._suffixes]})"


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.teredo is not None:
            return ip.teredo[1]
        if ip in ipaddress.ip_network("64:ff9b::/96"):  # NAT64: the last 32 bits are an IPv4 address
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(address: str, *, allow_loopback: bool) -> str | None:
    """Why a connection to ``address`` is refused, or None if it may be used.

    ``allow_loopback`` is local mode: 127.0.0.0/8 and ::1 (and IPv4-mapped loopback) become usable.
    """
    try:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    inner = _embedded_ipv4(ip)
    if inner is not None:
        reason = address_refusal(str(inner), allow_loopback=allow_loopback)
        return f"{address} embeds {inner}: {reason}" if reason else None
    if ip.is_loopback:
        return None if allow_loopback else f"{address} is a loopback address"
    if ip.is_link_local:
        return f"{address} is a link-local address (cloud metadata and credentials live there)"
    if ip.is_multicast:
        return f"{address} is a multicast address"
    if ip.is_unspecified or ip.is_reserved:
        return f"{address} is a reserved address"
    if ip.is_private or not ip.is_global:
        return f"{address} is a private address"
    return None


@dataclass(frozen=True)
class DownloadPolicy:
    """Where downloads may go. ``local_mode`` allows http and loopback addresses, for allowed hosts only."""

    allowed_hosts: HostAllowList
    local_mode: bool = False

    def check_url(self, url: str) -> None:
        """Raise DownloadRefused unless ``url`` may be requested (its scheme, host and form)."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            _ = parts.port  # a malformed port raises ValueError
        except ValueError as exc:
            raise DownloadRefused(f"refusing to download from a malformed URL: {exc}") from exc
        schemes = ("https", "http") if self.local_mode else ("https",)
        if parts.scheme not in schemes:
            allowed = " or ".join(schemes)
            raise DownloadRefused(
                f"refusing to download from scheme {parts.scheme or '(none)'!r}: only {allowed}"
            )
        if parts.username is not None or parts.password is not None:
            raise DownloadRefused("refusing to download from a URL with credentials in it")
        if not host:
            raise DownloadRefused("refusing to download from a URL without a host")
        if not self.allowed_hosts.allows(host):
            raise DownloadRefused(f"refusing to download from host {host!r}: not in the allowed hosts")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return  # a name: its addresses are checked when the connection opens
        self.check_address(host, host)

    def check_address(self, host: str, address: str) -> None:
        reason = address_refusal(address, allow_loopback=self.local_mode)
        if reason:
            raise DownloadRefused(f"refusing to connect to {host!r}: {reason}")


# --- connections that only go to checked addresses --------------------------------------------------------


class _GuardedConnectionMixin:
    """Replaces urllib3's ``_new_conn``: resolve, check every address, connect to a checked one."""

    policy: DownloadPolicy
    resolver: Resolver

    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any
    _dns_host: str

    def _new_conn(self) -> socket.socket:
        host = self._dns_host.strip("[]")
        try:
            results = self.resolver(host, self.port, allowed_gai_family(), socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NewConnectionError(self, f"Failed to resolve {host!r}: {exc}") from exc  # type: ignore[arg-type]
        addresses = list(dict.fromkeys(str(result[4][0]) for result in results))
        if not addresses:
            raise NewConnectionError(self, f"{host!r} resolved to no address")  # type: ignore[arg-type]
        for address in addresses:  # all of them: a name that mixes public and private answers is refused
            self.policy.check_address(host, address)
        error: OSError | None = None
        for address in addresses:
            try:
                return create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"Connection to {host} timed out") from exc
            except OSError as exc:
                error = exc
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}")  # type: ignore[arg-type]


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, policy: DownloadPolicy, resolver: Resolver, **kwargs: Any) -> None:
        self._policy = policy
        self._resolver = resolver
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        attributes = {"policy": self._policy, "resolver": staticmethod(self._resolver)}
        http_connection = type("GuardedHTTPConnection", (_GuardedConnectionMixin, HTTPConnection), attributes)
        https_connection = type(
            "GuardedHTTPSConnection", (_GuardedConnectionMixin, HTTPSConnection), attributes
        )
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_connection}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_connection}),
        }


def guarded_session(
    policy: DownloadPolicy, *, resolver: Resolver = socket.getaddrinfo, pool_size: int = 16
) -> requests.Session:
    """A session whose connections only reach addresses ``policy`` allows.

    It ignores proxy and netrc settings from the environment: a proxy would connect on our behalf to an
    address we never checked.
    """
    session = requests.Session()
    session.trust_env = False
    adapter = _GuardedAdapter(policy, resolver, pool_connections=4, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# --- pacing -----------------------------------------------------------------------------------------------


class RequestLimiter:
    """At most ``per_second`` request starts in any RATE_WINDOW_SECONDS window; 0 disables it."""

    def __init__(self, per_second: float) -> None:
        self._limit = max(1, round(per_second)) if per_second > 0 else 0
        self._window = RATE_WINDOW_SECONDS * (self._limit / per_second) if per_second > 0 else 0.0
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._limit:
            return
        while True:
            with self._lock:
                now = time.monotonic()
                while self._starts and self._starts[0] <= now - self._window:
                    self._starts.popleft()
                if len(self._starts) < self._limit:
                    self._starts.append(now)
                    return
                delay = self._starts[0] + self._window - now
            time.sleep(max(delay, 0.001))


# --- streams ----------------------------------------------------------------------------------------------


@dataclass
class DownloadStream:
    """An open response: the URL that answered (after redirects), its status and the body to read."""

    response: requests.Response
    url: str
    chunk_bytes: int
    #: Body bytes received straight into the caller's buffers (see ``read_into``).
    received: int = 0

    @property
    def status(self) -> int:
        return int(self.response.status_code)

    @property
    def content_length(self) -> int | None:
        value = self.response.headers.get("Content-Length", "")
        return int(value) if value.isdigit() else None

    @property
    def content_range(self) -> tuple[int, int, int | None] | None:
        """``(first, last, total)`` of a 206 answer's Content-Range, or None."""
        value = self.response.headers.get("Content-Range", "")
        unit, _, spec = value.partition(" ")
        span, _, total = spec.partition("/")
        first, _, last = span.partition("-")
        if unit.strip().lower() != "bytes" or not first.isdigit() or not last.isdigit():
            return None
        return int(first), int(last), int(total) if total.isdigit() else None

    def _read(self, amount: int) -> bytes:
        raw = self.response.raw
        encoding = self.response.headers.get("Content-Encoding", "identity").strip().lower()
        try:
            return bytes(raw.read(amount, decode_content=encoding not in ("", "identity")))
        except (HTTPError, OSError, requests.RequestException) as exc:
            raise UpstreamUnavailable(f"download interrupted: {type(exc).__name__}: {exc}") from exc

    def _direct(self) -> Any:
        """The underlying ``http.client`` response when the body can be read straight into our buffers:
        sent as is (no content coding), not chunked. None otherwise."""
        headers = self.response.headers
        encoding = headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity") or "chunked" in headers.get("Transfer-Encoding", "").lower():
            return None
        fp = getattr(self.response.raw, "_fp", None)
        return fp if hasattr(fp, "readinto") else None

    def read_into(self, view: memoryview) -> int:
        """Fill ``view`` from the body; returns how many bytes came (fewer only if the body ended early).

        Plain bodies are received straight into ``view`` (no intermediate copy); others chunk by chunk.
        """
        filled, size = 0, len(view)
        direct = self._direct()
        while filled < size:
            if direct is not None:
                try:
                    got = direct.readinto(view[filled : min(size, filled + self.chunk_bytes)])
                except (HTTPError, OSError, HTTPException) as exc:
                    raise UpstreamUnavailable(f"download interrupted: {type(exc).__name__}: {exc}") from exc
                if not got:
                    break
                filled += got
                self.received += got
                continue
            chunk = self._read(min(self.chunk_bytes, size - filled))
            if not chunk:
                break
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        return filled

    @property
    def drained(self) -> bool:
        """Whether the whole body (its announced Content-Length) has been received, so the connection is
        free to carry the next request instead of being closed."""
        return self.content_length is not None and self.received == self.content_length

    def has_more(self) -> bool:
        """Whether the body goes on (read at most one byte)."""
        direct = self._direct()
        if direct is None:
            return bool(self._read(1))
        try:
            return bool(direct.readinto(bytearray(1)))
        except (HTTPError, OSError, HTTPException) as exc:
            raise UpstreamUnavailable(f"download interrupted: {type(exc).__name__}: {exc}") from exc

    def chunks(self) -> Iterator[bytes]:
        while chunk := self._read(self.chunk_bytes):
            yield chunk


class ResultDownloader:
    """Opens result links as streams, whole or by byte range; follows at most three redirects, each
    checked."""

    def __init__(
        self,
        allowed_hosts: Iterable[str],
        *,
        allow_http: bool = False,
        chunk_bytes: int = 1024 * 1024,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        per_second: float = 5.0,
        resolver: Resolver = socket.getaddrinfo,
        pool_size: int = 16,
        pacer: Pacer | None = None,
    ) -> None:
        """``per_second`` paces this process's requests to Planet's download links; with ``pacer`` they take
        the deployment's ``download`` slots instead, so every landing at once stays under Planet's limit
        (the per-process pace is then only the fallback when the pace store fails)."""
        self.policy = DownloadPolicy(HostAllowList(allowed_hosts), local_mode=allow_http)
        self._chunk_bytes = chunk_bytes
        self._session = session or guarded_session(self.policy, resolver=resolver, pool_size=pool_size)
        self._timeout = timeout
        self._limiter = RequestLimiter(per_second)
        self._pacer = pacer
        self._unpaced_warned = False

    def check_url(self, url: str) -> None:
        self.policy.check_url(url)

    @contextmanager
    def open(
        self, url: str, *, byte_range: tuple[int, int] | None = None, paced: bool = True
    ) -> Iterator[DownloadStream]:
        """Open ``url``; ``byte_range`` is ``(first, last)`` inclusive; ``paced`` counts it against Planet's
        download rate (links on Planet's API are paced, the storage URLs they redirect to are not)."""
        headers = {"Accept-Encoding": "identity"}
        if byte_range is not None:
            headers["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
        if paced:
            self._wait_for_slot()
        try:
            response, final_url = self._follow(url, headers)
        except UpstreamRateLimited as exc:
            if paced:
                self._hold(exc.retry_after)
            raise
        stream = DownloadStream(response, final_url, self._chunk_bytes)
        try:
            yield stream
        finally:
            if stream.drained:
                # Hand the connection back to the pool: the next file or range reuses it (in AWS that
                # saves a TLS handshake per part). Anything less than the whole body closes it.
                response.raw.release_conn()
            response.close()

    def _wait_for_slot(self) -> None:
        """Block until this request may start: a ``download`` slot of the deployment, or of this process."""
        while self._pacer is not None:
            try:
                reservation = self._pacer.reserve("download", DOWNLOAD_SLOT_HORIZON_SECONDS)
            except PacingUnavailable as exc:
                metrics.add_metric(name="PacingUnavailable", unit="Count", value=1)
                if not self._unpaced_warned:  # once per landing, not once per file
                    self._unpaced_warned = True
                    logger.warning("download paced by this process only", extra={"error": str(exc)})
                break
            if reservation.taken:
                if reservation.wait_seconds > 0:
                    time.sleep(reservation.wait_seconds)
                if self._pacer.on_time(reservation):
                    return
                # Woke after the slot was over (a starved process): sent now, it would crowd the next slots.
                continue
            # Booked (or held after a 429) beyond the horizon: ask again once the horizon reaches it.
            time.sleep(min(max(reservation.wait_seconds - DOWNLOAD_SLOT_HORIZON_SECONDS, 0.05), 5.0))
        self._limiter.wait()

    def _hold(self, retry_after: float | None) -> None:
        if self._pacer is None:
            return
        try:
            self._pacer.rate_limited("download", retry_after)
        except PacingUnavailable as exc:
            logger.warning("could not hold the fleet's downloads after a 429", extra={"error": str(exc)})

    def _follow(self, url: str, headers: dict[str, str]) -> tuple[requests.Response, str]:
        for _hop in range(MAX_REDIRECTS + 1):
            self.policy.check_url(url)
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
            raise_for_status(response)
            return response, url
        raise DownloadRefused(f"refusing to follow more than {MAX_REDIRECTS} redirects")


def raise_for_status(response: Any) -> None:
    """The error a result download answered with, as landing acts on it; nothing for 1xx-3xx."""
    status = response.status_code
    if status < 400:
        return
    expired = status == 400 and _says_expired(response)
    response.close()
    if status in (401, 403, 410) or expired:
        raise LinkExpired(f"download link refused with {status}", status=status)
    if status == 429:
        raise UpstreamRateLimited(
            "download rate limited", retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    if status >= 500 or status == 408:
        raise UpstreamUnavailable(f"download answered {status}", status=status)
    raise UpstreamError(f"download answered {status}", status=status)


#: How much of a 400's body is read to tell an expired signed URL from a bad request.
_ERROR_BODY_BYTES = 4096
#: Google Cloud Storage answers an expired signed URL with 400 ``<Code>ExpiredToken</Code>`` ("...the
#: provided token has expired"); other stores say "Request has expired" or "signature expired".
_EXPIRED = re.compile(rb"expired", re.IGNORECASE)


def _says_expired(response: Any) -> bool:
    """Whether an error answer's body says its token or signature expired (the body is never logged: it
    may quote the signed URL)."""
    try:
        body = response.raw.read(_ERROR_BODY_BYTES, decode_content=True)
    except Exception:  # an unreadable body says nothing
        return False
    return bool(_EXPIRED.search(bytes(body or b"")))
