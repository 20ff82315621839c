"""Which URLs and addresses result downloads may reach (``order_core.adapters.downloads``). No sockets:
redirects are answered by ``responses`` and name resolution by a stand-in resolver."""

from __future__ import annotations

import itertools
import socket
from typing import Any

import pytest
import requests
import responses
from order_core.adapters import downloads
from order_core.adapters.downloads import (
    DownloadPolicy,
    HostAllowList,
    RequestLimiter,
    ResultDownloader,
    address_refusal,
    guarded_session,
)
from order_core.errors import (
    DownloadRefused,
    LinkExpired,
    PacingUnavailable,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from order_core.services.pacing import InMemoryPaceStore, Pacer

PLANET = "https://api.planet.com/compute/ops/download/?token=abc"
STORAGE = "https://storage.googleapis.com/bucket/file.tif?sig=1"
ALLOWED = ("api.planet.com", "storage.googleapis.com")


def downloader(*, local: bool = False, hosts: tuple[str, ...] = ALLOWED) -> ResultDownloader:
    return ResultDownloader(hosts, allow_http=local, per_second=0)


# --- addresses --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("169.254.169.254", "link-local"),  # EC2/ECS metadata
        ("169.254.170.2", "link-local"),  # ECS/Lambda container credentials
        ("fe80::1", "link-local"),
        ("10.0.0.7", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT, shared
        ("0.0.0.0", "reserved"),  # noqa: S104 - an address under test, nothing binds to it
        ("240.0.0.1", "reserved"),
        ("224.0.0.1", "multicast"),
        ("::ffff:169.254.169.254", "embeds 169.254.169.254"),  # IPv4-mapped
        ("::ffff:10.0.0.1", "embeds 10.0.0.1"),
        ("2002:a9fe:a9fe::1", "embeds 169.254.169.254"),  # 6to4
        ("64:ff9b::a9fe:a9fe", "embeds 169.254.169.254"),  # NAT64
    ],
)
def test_address_outside_the_public_internet_is_refused_in_every_mode(address: str, why: str) -> None:
    for local in (False, True):
        reason = address_refusal(address, allow_loopback=local)
        assert reason is not None and why in reason


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.8.8", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_refused_outside_local_mode_and_allowed_in_it(address: str) -> None:
    assert "loopback" in (address_refusal(address, allow_loopback=False) or "")
    assert address_refusal(address, allow_loopback=True) is None


@pytest.mark.parametrize("address", ["142.250.74.123", "2607:f8b0:4004:c1b::80"])
def test_public_address_is_allowed(address: str) -> None:
    assert address_refusal(address, allow_loopback=False) is None


# --- URLs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file:///proc/self/environ", "scheme 'file'"),
        ("ftp://api.planet.com/x", "scheme 'ftp'"),
        ("gopher://api.planet.com/x", "scheme 'gopher'"),
        ("http://api.planet.com/x", "scheme 'http': only https"),
        ("https://user:secret@api.planet.com/x", "credentials"),
        ("https://api.planet.com.evil.example/x", "not in the allowed hosts"),
        ("https://evil.example/api.planet.com", "not in the allowed hosts"),
        ("https://169.254.169.254/latest/meta-data/", "not in the allowed hosts"),
        ("https:///no-host", "without a host"),
        ("https://api.planet.com:99999/x", "malformed"),
    ],
)
def test_url_is_refused(url: str, why: str) -> None:
    with pytest.raises(DownloadRefused, match=why):
        downloader().check_url(url)


def test_allowed_host_that_is_a_link_local_address_is_still_refused() -> None:
    with pytest.raises(DownloadRefused, match="link-local"):
        downloader(hosts=("169.254.169.254",), local=True).check_url(
            "http://169.254.169.254/latest/meta-data/"
        )


def test_allowed_loopback_host_is_refused_outside_local_mode_and_allowed_in_it() -> None:
    with pytest.raises(DownloadRefused, match="loopback"):
        downloader(hosts=("127.0.0.1",)).check_url("https://127.0.0.1:8001/x")
    downloader(hosts=("127.0.0.1",), local=True).check_url("http://127.0.0.1:8001/x")


def test_wildcard_entry_allows_subdomains_only() -> None:
    allow = HostAllowList(["*.storage.example.com", "api.planet.com"])

    assert allow.allows("eu.storage.example.com") and allow.allows("API.planet.com.")
    assert not allow.allows("storage.example.com")
    assert not allow.allows("evilstorage.example.com")


# --- redirects --------------------------------------------------------------------------------------------


@responses.activate
def test_redirect_to_an_allowed_storage_host_is_followed_and_reported() -> None:
    responses.get(PLANET, status=302, headers={"Location": STORAGE})
    responses.get(STORAGE, body=b"bytes", headers={"Content-Length": "5"})

    with downloader().open(PLANET) as stream:
        assert stream.url == STORAGE
        assert bytes(stream.chunks().__next__()) == b"bytes"


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://169.254.169.254/latest/meta-data/",
        "https://127.0.0.1/x",
        "http://localhost:9000/x",
        "file:///proc/self/environ",
    ],
)
@responses.activate
def test_redirect_off_the_allow_list_is_refused_before_it_is_requested(target: str) -> None:
    responses.get(PLANET, status=302, headers={"Location": target})

    with pytest.raises(DownloadRefused, match="refusing"), downloader().open(PLANET):
        pass
    assert [call.request.url for call in responses.calls] == [PLANET]


@responses.activate
def test_redirect_to_127_0_0_1_is_refused_in_local_mode_unless_that_host_is_allowed() -> None:
    local = "http://localhost:8001/compute/ops/download/?token=t"
    responses.get(local, status=302, headers={"Location": "http://127.0.0.1:8001/storage/x"})

    refusal = pytest.raises(DownloadRefused, match=r"'127\.0\.0\.1': not in the allowed hosts")
    with refusal, downloader(local=True, hosts=("localhost",)).open(local):
        pass


@responses.activate
def test_more_than_three_redirects_are_refused() -> None:
    hops = [f"https://api.planet.com/hop/{i}" for i in range(5)]
    for here, there in itertools.pairwise(hops):
        responses.get(here, status=302, headers={"Location": there})
    responses.get(hops[-1], body=b"x")

    with pytest.raises(DownloadRefused, match="more than 3 redirects"), downloader().open(hops[0]):
        pass


@responses.activate
def test_three_redirects_are_followed() -> None:
    hops = [f"https://api.planet.com/hop/{i}" for i in range(4)]
    for here, there in itertools.pairwise(hops):
        responses.get(here, status=302, headers={"Location": there.replace("https://api.planet.com", "")})
    responses.get(hops[-1], body=b"x")

    with downloader().open(hops[0]) as stream:
        assert stream.url == hops[-1]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, LinkExpired),
        (403, LinkExpired),
        (410, LinkExpired),
        (429, UpstreamRateLimited),
        (503, UpstreamUnavailable),
        (404, UpstreamError),
    ],
)
@responses.activate
def test_refused_download_is_mapped_to_the_error_landing_acts_on(status: int, error: type[Exception]) -> None:
    responses.get(STORAGE, status=status, headers={"Retry-After": "4"})

    with pytest.raises(error) as raised, downloader().open(STORAGE):
        pass
    if isinstance(raised.value, UpstreamRateLimited):
        assert raised.value.retry_after == 4


@pytest.mark.parametrize(
    "body",
    [
        # Google Cloud Storage, a V4 signed URL past its expiry
        b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>ExpiredToken</Code><Message>Invalid argument."
        b"</Message><Details>The provided token has expired. Request signature expired at: "
        b"2026-11-30T10:00:00+00:00</Details></Error>",
        b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
    ],
    ids=["gcs-expired-token", "request-has-expired"],
)
@responses.activate
def test_storage_answering_400_that_its_token_expired_is_an_expired_link(body: bytes) -> None:
    responses.get(PLANET, status=302, headers={"Location": STORAGE})
    responses.get(STORAGE, status=400, body=body)

    with pytest.raises(LinkExpired) as raised, downloader().open(PLANET):
        pass
    assert raised.value.status == 400
    assert "Expired" not in str(raised.value) and "sig=" not in str(raised.value)  # the body stays out


@responses.activate
def test_400_for_another_reason_is_a_final_error_not_an_expired_link() -> None:
    responses.get(STORAGE, status=400, body=b"<Error><Code>InvalidArgument</Code></Error>")

    with pytest.raises(UpstreamError) as raised, downloader().open(STORAGE):
        pass
    assert type(raised.value) is UpstreamError and raised.value.status == 400


@responses.activate
def test_range_requests_ask_for_the_exact_bytes_and_plain_encoding() -> None:
    responses.get(STORAGE, status=206, body=b"0123", headers={"Content-Range": "bytes 10-13/100"})

    with downloader().open(STORAGE, byte_range=(10, 13), paced=False) as stream:
        assert stream.content_range == (10, 13, 100)
    sent = responses.calls[0].request.headers
    assert sent["Range"] == "bytes=10-13" and sent["Accept-Encoding"] == "identity"


# --- connections: resolve, check every address, connect to a checked one ----------------------------------


def fake_resolver(*addresses: str) -> Any:
    def resolve(host: str, port: int, *_args: Any) -> list[tuple[Any, ...]]:
        family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses]

    return resolve


@pytest.mark.parametrize("resolved", [("127.0.0.1",), ("169.254.169.254",), ("142.250.74.123", "10.0.0.8")])
def test_allowed_name_resolving_to_a_refused_address_is_never_connected_to(
    resolved: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    connected: list[Any] = []
    monkeypatch.setattr(downloads, "create_connection", lambda *a, **k: connected.append(a))
    session = guarded_session(DownloadPolicy(HostAllowList(ALLOWED)), resolver=fake_resolver(*resolved))

    with pytest.raises(DownloadRefused, match=r"refusing to connect to 'storage\.googleapis\.com'"):
        session.get(STORAGE, timeout=1)
    assert connected == []


def test_connection_goes_to_the_address_that_was_checked_not_to_a_second_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter([["142.250.74.123"], ["127.0.0.1"]])  # a rebinding DNS: public first, loopback next
    connected: list[Any] = []

    def resolve(host: str, port: int, *_args: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in next(answers)]

    def connect(address: tuple[str, int], *_args: Any, **_kwargs: Any) -> Any:
        connected.append(address)
        raise OSError("stop here: no sockets in unit tests")

    monkeypatch.setattr(downloads, "create_connection", connect)
    session = guarded_session(DownloadPolicy(HostAllowList(ALLOWED)), resolver=resolve)

    with pytest.raises(requests.ConnectionError):
        session.get(STORAGE, timeout=1)
    assert connected == [("142.250.74.123", 443)]


def test_session_ignores_proxies_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://10.0.0.1:3128")

    assert guarded_session(DownloadPolicy(HostAllowList(ALLOWED))).trust_env is False


# --- pacing -----------------------------------------------------------------------------------------------


def test_limiter_lets_five_requests_start_per_window_then_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(downloads.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(downloads.time, "sleep", sleep)
    limiter = RequestLimiter(5)

    for _ in range(6):
        limiter.wait()

    assert len(slept) == 1 and slept[0] == pytest.approx(downloads.RATE_WINDOW_SECONDS)


class _VirtualTime:
    def __init__(self) -> None:
        self.now = 7_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def virtual_time(monkeypatch: pytest.MonkeyPatch) -> _VirtualTime:
    clock = _VirtualTime()
    monkeypatch.setattr(downloads.time, "sleep", clock.sleep)
    return clock


def fleet_downloader(store: InMemoryPaceStore, clock: _VirtualTime) -> ResultDownloader:
    return ResultDownloader(ALLOWED, per_second=5, pacer=Pacer(store, scope="k", clock=clock))


@responses.activate
def test_downloader_with_pacer_spaces_planet_links_for_the_whole_fleet(virtual_time: _VirtualTime) -> None:
    responses.get(PLANET, body=b"x", headers={"Content-Length": "1"})
    store = InMemoryPaceStore()
    one, other = fleet_downloader(store, virtual_time), fleet_downloader(store, virtual_time)

    for loader in (one, other, one, other):
        with loader.open(PLANET):
            pass

    assert virtual_time.slept == pytest.approx([0.25, 0.25, 0.25])  # 5/s x 0.8 share, across both
    assert len(responses.calls) == 4


@responses.activate
def test_downloader_that_wakes_after_its_slot_is_over_takes_a_new_one(
    virtual_time: _VirtualTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    responses.get(PLANET, body=b"x", headers={"Content-Length": "1"})
    store = InMemoryPaceStore()
    loader = fleet_downloader(store, virtual_time)
    with loader.open(PLANET):
        pass
    started = virtual_time.now
    late = iter([0.4])  # the sleep for the next slot ends 0.4 s late (a starved process)
    monkeypatch.setattr(downloads.time, "sleep", lambda s: virtual_time.sleep(s + next(late, 0.0)))

    with loader.open(PLANET):
        pass

    # The missed slot stays unused; the request went out on a new one, taken when it woke.
    assert store.next_free("pace#k#download") == pytest.approx(started + 0.25 + 0.4 + 0.25)
    assert len(responses.calls) == 2


@responses.activate
def test_downloader_with_pacer_storage_urls_take_no_slot(virtual_time: _VirtualTime) -> None:
    responses.get(STORAGE, body=b"x", headers={"Content-Length": "1"})
    store = InMemoryPaceStore()
    loader = fleet_downloader(store, virtual_time)

    for _ in range(3):
        with loader.open(STORAGE, paced=False):
            pass

    assert virtual_time.slept == [] and store.next_free("pace#k#download") == 0


@responses.activate
def test_downloader_429_holds_every_landing_until_retry_after(virtual_time: _VirtualTime) -> None:
    responses.get(PLANET, status=429, headers={"Retry-After": "20"})
    store = InMemoryPaceStore()
    throttled, other = fleet_downloader(store, virtual_time), fleet_downloader(store, virtual_time)
    with pytest.raises(UpstreamRateLimited):
        throttled.open(PLANET).__enter__()
    responses.replace(responses.GET, PLANET, body=b"x", headers={"Content-Length": "1"})

    with other.open(PLANET):
        pass

    # Held beyond the booking horizon: it sleeps until the horizon reaches the hold, then takes its slot.
    assert sum(virtual_time.slept) == pytest.approx(20)
    assert len(responses.calls) == 2


@responses.activate
def test_downloader_broken_pace_store_falls_back_to_its_own_pace(
    virtual_time: _VirtualTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken(InMemoryPaceStore):
        def reserve(self, key: str, now: float, interval: float, horizon: float) -> float | None:
            raise PacingUnavailable("the pace store could not be written: AccessDeniedException")

    monkeypatch.setattr(downloads.time, "monotonic", virtual_time)
    responses.get(PLANET, body=b"x", headers={"Content-Length": "1"})
    loader = fleet_downloader(Broken(), virtual_time)

    for _ in range(6):
        with loader.open(PLANET):
            pass

    assert len(responses.calls) == 6
    assert virtual_time.slept == pytest.approx([downloads.RATE_WINDOW_SECONDS])  # this process's 5/s


# --- connection reuse -------------------------------------------------------------------------------------


class _CountingServer:
    """A plain HTTP/1.1 server on loopback that serves ``size`` bytes and notes which connection asked."""

    def __init__(self, size: int) -> None:
        import http.server
        import threading

        peers: list[tuple[str, int]] = []
        body = b"x" * size

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                peers.append(self.client_address)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.peers = peers
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/file"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def connections(self) -> int:
        return len(set(self.peers))


def test_whole_bodies_reuse_one_connection_and_a_partly_read_body_closes_its_own() -> None:
    server = _CountingServer(64 * 1024)
    loader = ResultDownloader(["127.0.0.1"], allow_http=True, per_second=0)
    try:
        for _ in range(4):
            with loader.open(server.url) as stream:
                assert stream.read_into(memoryview(bytearray(64 * 1024))) == 64 * 1024
        assert (len(server.peers), server.connections()) == (4, 1)

        with loader.open(server.url) as stream:  # read half, then give up: the rest is still on the wire
            stream.read_into(memoryview(bytearray(32 * 1024)))
        with loader.open(server.url) as stream:
            assert stream.read_into(memoryview(bytearray(64 * 1024))) == 64 * 1024
        assert (len(server.peers), server.connections()) == (6, 2)
    finally:
        server.server.shutdown()
