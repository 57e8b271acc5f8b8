"""result_download: the result URL is hostile until proven otherwise."""

from __future__ import annotations

import io
import ipaddress
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
import urllib3
from fakes import FakePinnedResponse, FakePools, PinnedRequest, Reply, TrackingStream
from swapdrop.result_download import DEFAULT_BUDGET_SECONDS, MAX_REDIRECTS, DownloadRefused, ResultDownloader

PUBLIC = "93.184.215.14"


class FakeResolver:
    """Host → addresses; IP literals resolve to themselves; anything else does not resolve."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = {"cdn.example": [PUBLIC], **(table or {})}
        self.calls: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.calls.append(host)
        try:
            ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            pass
        else:
            return [host]
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


def downloader(
    adapter: FakePools,
    resolver: FakeResolver | None = None,
    allow_private: bool = False,
    max_bytes: int = 50_000,
) -> ResultDownloader:
    return ResultDownloader(
        max_bytes=max_bytes,
        allow_private=allow_private,
        timeout_seconds=15,
        pools=adapter,
        resolver=resolver or FakeResolver(),
    )


def image_reply(data: bytes, content_type: str = "image/png", **headers: str) -> Reply:
    return Reply(200, data, {"Content-Type": content_type, "Content-Length": str(len(data)), **headers})


def test_downloads_an_image_and_names_it_by_content(images: SimpleNamespace) -> None:
    adapter = FakePools([image_reply(images.png, content_type="image/jpeg")])
    result = downloader(adapter).download("https://cdn.example/attachments/1/swap.jpg?sig=abc")
    assert result.data == images.png
    assert result.extension == "png"
    assert result.mime_type == "image/png"
    (sent,) = adapter.requests
    assert sent.method == "GET"
    assert sent.url == "https://cdn.example/attachments/1/swap.jpg?sig=abc"
    assert sent.timeout == (5.0, 15)
    assert "Authorization" not in sent.headers


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("file:///etc/passwd", "scheme 'file' is not http or https"),
        ("ftp://cdn.example/r.png", "scheme 'ftp' is not http or https"),
        ("gopher://cdn.example/r.png", "scheme 'gopher'"),
        ("https://user:pw@cdn.example/r.png", "carries credentials"),
        ("https://user@cdn.example/r.png", "carries credentials"),
        ("http:///r.png", "has no host"),
        ("https://nowhere.invalid/r.png", "'nowhere.invalid' does not resolve"),
    ],
)
def test_refuses_bad_urls_without_a_request(url: str, fragment: str) -> None:
    adapter = FakePools([])
    with pytest.raises(DownloadRefused) as raised:
        downloader(adapter).download(url)
    assert fragment in str(raised.value)
    assert adapter.requests == []
    assert adapter.opened == 0


@pytest.mark.parametrize(
    "addresses",
    [
        ["169.254.169.254"],
        ["169.254.170.2"],
        ["fd00:ec2::254"],
        ["10.0.0.1"],
        ["127.0.0.1"],
        ["192.168.1.20"],
        ["::1"],
        ["fe80::1%eth0"],
        ["::ffff:169.254.169.254"],
        ["::ffff:10.0.0.1"],
        ["100.64.0.1"],
        ["0.0.0.0"],  # noqa: S104 - an address the host resolves to, not a bind
        ["224.0.0.251"],
        ["240.0.0.1"],
        [PUBLIC, "169.254.169.254"],  # one bad address among good ones is enough
    ],
)
def test_refuses_hosts_resolving_to_internal_addresses(addresses: list[str]) -> None:
    adapter = FakePools([])
    resolver = FakeResolver({"evil.example": addresses})
    with pytest.raises(DownloadRefused, match=r"'evil\.example' resolves to a disallowed address"):
        downloader(adapter, resolver).download("https://evil.example/r.png")
    assert adapter.requests == []
    assert resolver.calls == ["evil.example"]


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://[::ffff:a9fe:a9fe]/"]
)
def test_refuses_metadata_ip_literals(url: str) -> None:
    adapter = FakePools([])
    with pytest.raises(DownloadRefused, match="disallowed address"):
        downloader(adapter, allow_private=True).download(url)
    assert adapter.requests == []


def test_allow_private_admits_loopback_and_private_but_never_link_local(images: SimpleNamespace) -> None:
    resolver = FakeResolver({"emulator.local": ["127.0.0.1"], "lan.local": ["10.0.0.1"]})
    adapter = FakePools([image_reply(images.png), image_reply(images.jpeg, "image/jpeg")])
    local = downloader(adapter, resolver, allow_private=True)
    assert local.download("http://emulator.local:8080/r.png").extension == "png"
    assert local.download("http://lan.local/r.jpg").extension == "jpg"
    for bad in ("http://169.254.169.254/", "http://[fd00:ec2::254]/", "http://[::ffff:169.254.169.254]/"):
        with pytest.raises(DownloadRefused, match="disallowed address"):
            local.download(bad)
    assert len(adapter.requests) == 2


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, b"", {"Location": location})


def test_follows_up_to_three_redirects_checking_every_hop(images: SimpleNamespace) -> None:
    hosts = {f"hop{i}.example": [f"93.184.215.{20 + i}"] for i in range(4)}
    resolver = FakeResolver(hosts)
    adapter = FakePools(
        [
            redirect("https://hop1.example/a"),
            redirect("https://hop2.example/b", 301),
            redirect("/c", 307),  # relative: resolved against hop2
            image_reply(images.webp, "image/webp"),
        ]
    )
    result = downloader(adapter, resolver).download("https://hop0.example/start")
    assert result.extension == "webp"
    assert [r.url for r in adapter.requests] == [
        "https://hop0.example/start",
        "https://hop1.example/a",
        "https://hop2.example/b",
        "https://hop2.example/c",
    ]
    assert resolver.calls == ["hop0.example", "hop1.example", "hop2.example", "hop2.example"]


def test_refuses_a_fourth_redirect() -> None:
    adapter = FakePools([redirect(f"https://cdn.example/{i}") for i in range(MAX_REDIRECTS + 1)])
    with pytest.raises(DownloadRefused, match=f"redirected more than {MAX_REDIRECTS} times"):
        downloader(adapter).download("https://cdn.example/start")
    assert len(adapter.requests) == MAX_REDIRECTS + 1


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://[fd00:ec2::254]/",
        "file:///etc/passwd",
        "http://internal.example/",
    ],
)
def test_refuses_a_redirect_into_the_inside(location: str) -> None:
    resolver = FakeResolver({"internal.example": ["10.1.2.3"]})
    adapter = FakePools([redirect(location)])
    with pytest.raises(DownloadRefused):
        downloader(adapter, resolver).download("https://cdn.example/r.png")
    assert len(adapter.requests) == 1  # the internal hop was never requested


def test_declared_length_over_the_cap_is_refused_before_reading(images: SimpleNamespace) -> None:
    big = images.png + b"\x00" * 60_000
    adapter = FakePools([image_reply(big)])
    with pytest.raises(DownloadRefused, match=f"is {len(big)} bytes, over the 50000-byte limit"):
        downloader(adapter).download("https://cdn.example/r.png")
    (stream,) = adapter.streams
    assert stream.bytes_read == 0


def test_streamed_body_over_the_cap_is_refused(images: SimpleNamespace) -> None:
    big = images.png + b"\x00" * 200_000
    adapter = FakePools([Reply(200, big, {"Content-Type": "image/png"})])  # no Content-Length
    with pytest.raises(DownloadRefused, match="over the 50000-byte limit"):
        downloader(adapter).download("https://cdn.example/r.png")
    (stream,) = adapter.streams
    assert stream.bytes_read < len(big)


def test_a_lying_small_content_length_does_not_lift_the_cap(images: SimpleNamespace) -> None:
    big = images.png + b"\x00" * 200_000
    adapter = FakePools([Reply(200, big, {"Content-Length": "10"})])
    with pytest.raises(DownloadRefused, match="over the 50000-byte limit"):
        downloader(adapter).download("https://cdn.example/r.png")


@pytest.mark.parametrize("status", [403, 404, 410, 500, 204])
def test_non_200_is_refused(status: int) -> None:
    with pytest.raises(DownloadRefused, match=f"the result URL answered HTTP {status}"):
        downloader(FakePools([Reply(status, b"<Error>AccessDenied</Error>")])).download("https://cdn.example/r")


@pytest.mark.parametrize("name", ["gif", "pdf", "truncated_jpeg", "heic"])
def test_non_image_content_is_refused(images: SimpleNamespace, name: str) -> None:
    adapter = FakePools([image_reply(getattr(images, name))])
    with pytest.raises(DownloadRefused, match=r"^the result "):
        downloader(adapter).download("https://cdn.example/r.png")


def test_html_error_page_with_200_is_refused() -> None:
    adapter = FakePools([Reply(200, b"<html>expired</html>", {"Content-Type": "text/html"})])
    with pytest.raises(DownloadRefused, match="the result is not an image file"):
        downloader(adapter).download("https://cdn.example/r.png")


def test_transport_errors_are_refusals() -> None:
    with pytest.raises(DownloadRefused, match=r"could not fetch the result image \(ConnectTimeoutError\)"):
        downloader(FakePools([urllib3.exceptions.ConnectTimeoutError()])).download("https://cdn.example/r.png")


def test_a_body_that_breaks_off_is_a_refusal(images: SimpleNamespace) -> None:
    def answer(request: PinnedRequest) -> FakePinnedResponse:
        broken = TrackingStream(images.png * 10, fail_after=1, error=urllib3.exceptions.ProtocolError("reset"))
        return FakePinnedResponse(Reply(200), broken)

    with pytest.raises(DownloadRefused, match=r"broke off \(ProtocolError\)"):
        downloader(FakePools(answer)).download("https://cdn.example/r.png")


# A malformed imageUrl comes from the upstream's callback body. It must end as a refusal
# (recorded on the job, retried, eventually given up), never as an unexpected exception.


@pytest.mark.parametrize(
    "url", ["http://[::1/result.png", "https://[not-an-ip]/r.png", "http://cdn.example:99999999/r.png"]
)
def test_a_malformed_url_is_a_refusal(url: str) -> None:
    adapter = FakePools([])
    with pytest.raises(DownloadRefused):
        downloader(adapter).download(url)
    assert adapter.requests == []


def test_a_malformed_redirect_location_is_a_refusal() -> None:
    adapter = FakePools([redirect("http://[::1/x")])
    with pytest.raises(DownloadRefused):
        downloader(adapter).download("https://cdn.example/r.png")


def test_a_host_name_the_resolver_cannot_even_encode_is_a_refusal() -> None:
    """socket.getaddrinfo raises UnicodeError (a ValueError, not an OSError) for a DNS label
    over 63 characters; resolve_host passes it through. That, too, must end as a refusal."""

    def resolver(host: str) -> list[str]:
        raise UnicodeError("encoding with 'idna' codec failed (UnicodeError: label too long)")

    adapter = FakePools([])
    with pytest.raises(DownloadRefused):
        ResultDownloader(max_bytes=1000, pools=adapter, resolver=resolver).download(
            "https://" + "a" * 64 + ".example/r.png"
        )


# --- the total time budget --------------------------------------------------------------------------


class FakeMonotonic:
    """time.monotonic that only moves when something 'takes time'."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class DrippingStream(io.BytesIO):
    """A body that hands out one byte per read, each read taking `seconds` on the fake clock."""

    def __init__(self, data: bytes, clock: FakeMonotonic, seconds: float) -> None:
        super().__init__(data)
        self.clock, self.seconds, self.reads = clock, seconds, 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        self.clock.now += self.seconds
        return super().read(1)


def budgeted(adapter: FakePools, clock: FakeMonotonic, budget: float = 20.0) -> ResultDownloader:
    return ResultDownloader(
        max_bytes=2_000_000,
        timeout_seconds=15,
        pools=adapter,
        resolver=FakeResolver(),
        budget_seconds=budget,
        clock=clock,
    )


def test_a_dripping_body_is_cut_off_at_the_budget() -> None:
    """The reported failure: one byte every 3 s with Content-Length 1,000,000 held the callback 60+ s."""
    clock = FakeMonotonic()
    streams: list[DrippingStream] = []

    def drip(request: PinnedRequest) -> FakePinnedResponse:
        streams.append(DrippingStream(b"\x89PNG" + b"\x00" * 999_996, clock, seconds=3.0))
        return FakePinnedResponse(Reply(200, headers={"Content-Length": "1000000"}), streams[-1])

    started = clock.now
    with pytest.raises(DownloadRefused) as raised:
        budgeted(FakePools(drip), clock).download("https://cdn.example/r.png")
    assert str(raised.value) == "the result download took longer than 20 s (its total time budget) and was cut off"
    (stream,) = streams
    assert stream.reads == 7  # 7 reads x 3 s = 21 s: the 8th is never started
    assert clock.now - started == 21.0


def test_each_request_gets_only_what_is_left_of_the_budget(images: SimpleNamespace) -> None:
    clock = FakeMonotonic()
    replies = iter([redirect("https://cdn.example/b"), image_reply(images.png)])

    def slow_hop(request: PinnedRequest) -> Reply:
        reply = next(replies)
        clock.now += 17.5 if reply.status == 302 else 0.5
        return reply

    adapter = FakePools(slow_hop)
    assert budgeted(adapter, clock).download("https://cdn.example/a").extension == "png"
    assert [r.timeout for r in adapter.requests] == [(5.0, 15), (2.5, 2.5)]


def test_redirects_that_use_up_the_budget_are_cut_off() -> None:
    clock = FakeMonotonic()

    def slow_redirect(request: PinnedRequest) -> Reply:
        clock.now += 11
        return redirect("https://cdn.example/next")

    adapter = FakePools(slow_redirect)
    with pytest.raises(DownloadRefused, match="took longer than 20 s"):
        budgeted(adapter, clock).download("https://cdn.example/start")
    assert len(adapter.requests) == 2  # the third hop is never requested


def test_a_timeout_that_runs_into_the_deadline_says_so() -> None:
    clock = FakeMonotonic()

    def hangs(request: PinnedRequest) -> BaseException:
        clock.now += 20
        return urllib3.exceptions.ReadTimeoutError(None, request.url, "read timed out")  # type: ignore[arg-type]

    with pytest.raises(DownloadRefused, match="took longer than 20 s"):
        budgeted(FakePools(hangs), clock).download("https://cdn.example/r.png")


def test_a_short_timeout_well_inside_the_budget_keeps_its_own_reason() -> None:
    clock = FakeMonotonic()
    with pytest.raises(DownloadRefused, match=r"could not fetch the result image \(ConnectTimeoutError\)"):
        budgeted(FakePools([urllib3.exceptions.ConnectTimeoutError()]), clock).download("https://cdn.example/r.png")


def test_the_default_budget_fits_inside_the_callback_functions_timeout() -> None:
    template = (Path(__file__).resolve().parents[2] / "template.yaml").read_text()
    callback = template[template.index("  CallbackFunction:") :]
    timeout = int(callback[callback.index("Timeout:") :].split()[1])
    assert timeout >= DEFAULT_BUDGET_SECONDS + 5  # room left for the S3 write and the job update


def test_an_outbox_claim_outlasts_a_whole_result_download() -> None:
    """A claim that expired mid-download would let a second finisher copy the same result."""
    from swapdrop.result_download import DEFAULT_BUDGET_SECONDS
    from swapdrop.state_machine import DELIVERY_LEASE_SECONDS

    assert DELIVERY_LEASE_SECONDS >= 2 * DEFAULT_BUDGET_SECONDS


def test_a_callbacks_copy_gives_up_before_a_relay_stops_waiting_for_the_answer() -> None:
    """The callback copies the result while the relay waits for its answer (the emulator waits
    10 s, as relays do): a slow result is left to the reconciler's whole budget instead."""
    from swapdrop.result_download import CALLBACK_BUDGET_SECONDS, DEFAULT_BUDGET_SECONDS
    from swapdrop_emulator import EmulatorConfig

    assert EmulatorConfig(api_key="k").callback_timeout / 1.5 > CALLBACK_BUDGET_SECONDS
    assert CALLBACK_BUDGET_SECONDS < DEFAULT_BUDGET_SECONDS


# --- the checked address is the one connected to (no DNS rebinding) --------------------------------


class Rebinding:
    """A name that answers a public address first and an inside one to every later lookup."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.calls.append(host)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.mark.parametrize("inside", ["169.254.169.254", "127.0.0.1"])
def test_connects_to_the_checked_address_when_the_name_answers_differently_later(
    images: SimpleNamespace, inside: str
) -> None:
    resolver = Rebinding([PUBLIC], [inside])
    adapter = FakePools([image_reply(images.png)])
    assert downloader(adapter, resolver).download("https://rebind.example:8443/r.png?sig=1").extension == "png"
    assert resolver.calls == ["rebind.example"]  # resolved once: nothing else could look again
    (sent,) = adapter.requests
    assert (sent.scheme, sent.address, sent.port, sent.host) == ("https", PUBLIC, 8443, "rebind.example")
    assert sent.target == "/r.png?sig=1"
    assert sent.headers["Host"] == "rebind.example:8443"  # the name, for the server (TLS keeps it too)


def test_connects_to_the_first_address_of_several_checked(images: SimpleNamespace) -> None:
    resolver = FakeResolver({"cdn.example": ["93.184.215.20", "93.184.215.21"]})
    adapter = FakePools([image_reply(images.png)])
    downloader(adapter, resolver).download("http://cdn.example/r.png")
    assert [(r.address, r.port) for r in adapter.requests] == [("93.184.215.20", 80)]


def test_every_redirect_hop_is_pinned_to_its_own_checked_address(images: SimpleNamespace) -> None:
    resolver = FakeResolver({"hop1.example": ["93.184.215.31"]})
    adapter = FakePools([redirect("https://hop1.example/b"), image_reply(images.png)])
    downloader(adapter, resolver).download("https://cdn.example/a")
    assert [(r.address, r.host, r.url) for r in adapter.requests] == [
        (PUBLIC, "cdn.example", "https://cdn.example/a"),
        ("93.184.215.31", "hop1.example", "https://hop1.example/b"),
    ]


def test_a_redirect_to_a_name_that_resolves_inside_is_refused_before_connecting() -> None:
    resolver = FakeResolver({"rebind.example": [PUBLIC, "169.254.169.254"], "lan.example": ["10.0.0.7"]})
    for location in ("https://rebind.example/x", "http://lan.example/x"):
        adapter = FakePools([redirect(location)])
        with pytest.raises(DownloadRefused, match="resolves to a disallowed address"):
            downloader(adapter, resolver).download("https://cdn.example/r.png")
        assert adapter.opened == 1  # only the first hop's connection


def test_a_name_with_no_addresses_does_not_resolve() -> None:
    adapter = FakePools([])
    with pytest.raises(DownloadRefused, match=r"the result host 'empty\.example' does not resolve"):
        downloader(adapter, FakeResolver({"empty.example": []})).download("https://empty.example/r.png")
    assert adapter.opened == 0


def test_every_answer_and_connection_pool_is_closed(images: SimpleNamespace) -> None:
    adapter = FakePools([redirect("/b"), Reply(404), redirect("/c"), image_reply(images.png)])
    with pytest.raises(DownloadRefused, match="HTTP 404"):
        downloader(adapter).download("https://cdn.example/a")
    assert downloader(adapter).download("https://cdn.example/a").extension == "png"
    assert all(response.closed for response in adapter.responses)
    assert adapter.closed == adapter.opened == 4
