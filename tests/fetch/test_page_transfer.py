"""A transfer of URLs a page chose fetches only what that page could read with
`fetch()`: Local Network Access on the address connected to, CORS on every response,
no credentials, and failures that all read the same.

Every packet stays on this machine: servers listen on 127.0.0.1 or ::1, and names
like ``cdn.example.test`` reach them only through the resolver seam (`names`), which
refuses any name it does not know instead of asking DNS. To let a first hop pass for
a public page, the classifier seam counts ::1 as public (`ipv6_loopback_is_public`).
"""

from __future__ import annotations

import hashlib
import random
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import requests

from support.httpserver import Fault, ModelServer
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.fetch.access import (
    PAGE_DOWNLOAD_FAILED,
    AddressSpace,
    IPAddress,
    PageAccess,
    address_space,
)
from webmodels.fetch.transfer import Transfer, TransferOptions, new_session
from webmodels.store.blobs import PendingBlob

MIB = 1 << 20
FAST = TransferOptions(connect_timeout_s=2.0, stall_timeout_s=2.0, backoff_s=0.01, max_attempts=2)
PUBLIC_PAGE = "https://shop.example"


def blob(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def digest(data: bytes) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest())


def names(mapping: dict[str, str]) -> Callable[[str, int], Sequence[str]]:
    """The resolver seam: known names, IP literals as themselves, nothing from DNS."""

    def resolve(host: str, port: int) -> Sequence[str]:
        if host in mapping:
            return [mapping[host]]
        if host.replace(".", "").isdigit() or ":" in host:
            return [host]
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: unknown to this test")

    return resolve


def ipv6_loopback_is_public(address: IPAddress) -> AddressSpace:
    return AddressSpace.PUBLIC if str(address) == "::1" else address_space(address)


class Page:
    """Transfers the way the job runner builds them for a page-chosen query."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "tmp"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.progress: list[tuple[int, int | None]] = []
        self.sessions: list[requests.Session] = []

    def run(self, urls: list[str], expected: Digest, access: PageAccess | None) -> PendingBlob:
        session = new_session()
        self.sessions.append(session)
        transfer = Transfer(
            urls=urls,
            expected=expected,
            expected_size=None,
            partial=self.dir / f"dl-{expected.hex}.partial",
            options=FAST,
            session=session,
            progress=lambda loaded, total: self.progress.append((loaded, total)),
            should_stop=lambda: False,
            access=access,
        )
        return transfer.run()

    def fail(self, urls: list[str], expected: Digest, access: PageAccess) -> HostError:
        with pytest.raises(HostError) as info:
            self.run(urls, expected, access)
        return info.value


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    made = Page(tmp_path)
    yield made
    for session in made.sessions:
        session.close()


@pytest.fixture
def ipv6_server() -> Iterator[ModelServer]:
    with ModelServer(host="::1") as server:
        yield server


def public_page(**mapping: str) -> PageAccess:
    return PageAccess.for_origin(
        PUBLIC_PAGE, resolve=names(mapping), classify=ipv6_loopback_is_public
    )


def local_page(port: int, **mapping: str) -> PageAccess:
    return PageAccess.for_origin(f"http://x.localhost:{port}", resolve=names(mapping))


def refused(error: HostError) -> bool:
    return (error.code, error.message, error.details) == (
        "download_failed",
        PAGE_DOWNLOAD_FAILED,
        {},
    )


# --- Local Network Access, on the address actually connected to ----------------------


def test_a_public_page_cannot_make_the_host_reach_a_loopback_server(
    page: Page, model_server: ModelServer
) -> None:
    data = blob(100_000)
    url = model_server.add("admin/delete", data)

    error = page.fail([url], digest(data), public_page())

    assert refused(error)
    assert model_server.accepted == 0  # refused before connecting
    assert page.progress == []


def test_a_public_looking_name_that_resolves_to_loopback_is_refused(
    page: Page, model_server: ModelServer
) -> None:
    data = blob(100_000)
    model_server.add("model.onnx", data)
    url = f"http://models.example.test:{model_server.port}/model.onnx"

    error = page.fail([url], digest(data), public_page(**{"models.example.test": "127.0.0.1"}))

    assert refused(error)
    assert model_server.accepted == 0


def test_a_redirect_from_a_public_host_to_loopback_is_refused_at_the_hop(
    page: Page, model_server: ModelServer, ipv6_server: ModelServer
) -> None:
    data = blob(100_000)
    inside = model_server.add("model.onnx", data)
    ipv6_server.add("direct.onnx", data)
    ipv6_server.redirect("to-literal", inside)
    ipv6_server.redirect("to-name", f"http://intranet.example.test:{model_server.port}/model.onnx")
    access = public_page(**{"cdn.example.test": "::1", "intranet.example.test": "127.0.0.1"})
    cdn = f"http://cdn.example.test:{ipv6_server.port}"

    # The seam lets the public first hop through: a direct download works ...
    assert page.run([f"{cdn}/direct.onnx"], digest(data), access).size == len(data)
    # ... but neither a redirect to a loopback literal nor one to a name that
    # resolves to loopback (DNS rebinding) is followed.
    for hop in ("to-literal", "to-name"):
        assert refused(page.fail([f"{cdn}/{hop}"], digest(data), access))
    assert model_server.accepted == 0
    assert [(r.path, r.origin) for r in ipv6_server.requests] == [
        ("/direct.onnx", PUBLIC_PAGE),
        ("/to-literal", PUBLIC_PAGE),
        ("/to-name", PUBLIC_PAGE),
    ]


# --- CORS on every response, before its body is read ------------------------------------


def test_a_response_without_cors_is_refused_with_its_body_unread(
    page: Page, model_server: ModelServer
) -> None:
    model_server.cors = None
    data = blob(32 * MIB)
    url = model_server.add("model.onnx", data)

    error = page.fail([url], digest(data), local_page(model_server.port))

    assert refused(error)
    assert page.progress == []  # not even the Content-Length reached the page
    partial = page.dir / f"dl-{digest(data).hex}.partial"
    assert not partial.exists() or partial.stat().st_size == 0
    assert len(model_server.requests) == 1  # refused, not retried
    # The server wrote what socket buffers took before the host hung up, no more.
    print(f"no-CORS body: {model_server.bytes_sent()} of {len(data)} bytes left the server")
    assert model_server.bytes_sent() < len(data) // 2


def test_a_redirect_without_cors_is_not_followed(page: Page) -> None:
    data = blob(100_000)
    with ModelServer(cors=None) as bare, ModelServer() as target:
        url = target.add("model.onnx", data)
        bare.redirect("model.onnx", url)

        error = page.fail([bare.url("model.onnx")], digest(data), local_page(bare.port))

        assert refused(error)
        assert target.accepted == 0


def test_cors_for_the_exact_origin_passes_and_another_origin_does_not(page: Page) -> None:
    data = blob(100_000)
    with ModelServer(cors="http://x.localhost:8123") as server:
        url = server.add("model.onnx", data)
        mine = PageAccess.for_origin("http://x.localhost:8123", resolve=names({}))
        other = PageAccess.for_origin("http://y.localhost:8123", resolve=names({}))

        assert page.run([url], digest(data), mine).size == len(data)
        assert refused(page.fail([url], digest(data), other))
        assert [r.origin for r in server.requests] == [mine.origin, other.origin]


# --- no credentials -----------------------------------------------------------------------


def test_netrc_credentials_are_never_sent_for_a_page(
    page: Page, model_server: ModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    data = blob(100_000)
    url = model_server.add("model.onnx", data)

    page.run([url], digest(data), None)  # the user's own (CLI) download: netrc applies
    page.run([url], digest(data), local_page(model_server.port))

    assert [r.authorization is not None for r in model_server.requests] == [True, False]


def test_cookies_set_by_a_redirect_never_reach_the_next_hop(
    page: Page, model_server: ModelServer
) -> None:
    data = blob(100_000)
    url = model_server.add("model.onnx", data)
    setter = Fault(
        "status",
        status=302,
        times=None,
        headers=(("Location", url), ("Set-Cookie", "sid=secret; Path=/")),
    )
    model_server.fault("login", setter)

    page.run([model_server.url("login")], digest(data), local_page(model_server.port))

    assert [(r.path, r.cookie) for r in model_server.requests] == [
        ("/login", None),
        ("/model.onnx", None),
    ]


# --- what a page learns of a failure ------------------------------------------------------


def test_every_failure_reads_the_same_to_the_page(
    page: Page, model_server: ModelServer, ipv6_server: ModelServer
) -> None:
    data = blob(10_000)
    expected = digest(data)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    model_server.add("model.onnx", data)
    ipv6_server.fault("gone", Fault("status", status=404, times=None))
    ipv6_server.fault("forbidden", Fault("status", status=403, times=None))
    ipv6_server.cors = None
    ipv6_server.add("bare.onnx", data)
    access = public_page(**{"cdn.example.test": "::1"})
    cdn = f"http://cdn.example.test:{ipv6_server.port}"
    loopback = PageAccess.for_origin("http://x.localhost", resolve=names({}))

    errors = {
        "loopback from a public page": page.fail(
            [model_server.url("model.onnx")], expected, access
        ),
        "unknown name": page.fail(["http://nowhere.example.test/m.onnx"], expected, access),
        "no CORS": page.fail([f"{cdn}/bare.onnx"], expected, access),
    }
    ipv6_server.cors = "*"
    errors["HTTP 404"] = page.fail([f"{cdn}/gone"], expected, access)
    errors["HTTP 403"] = page.fail([f"{cdn}/forbidden"], expected, access)
    errors["connection refused"] = page.fail(
        [f"http://127.0.0.1:{closed}/m.onnx"], expected, loopback
    )

    seen = {(e.code, e.message, str(e.details)) for e in errors.values()}
    assert seen == {("download_failed", PAGE_DOWNLOAD_FAILED, "{}")}, errors


def test_wrong_bytes_give_integrity_mismatch_without_any_hash(
    page: Page, model_server: ModelServer
) -> None:
    served = blob(100_000, seed=2)
    wanted = blob(100_000, seed=3)
    url = model_server.add("model.onnx", served)

    error = page.fail([url], digest(wanted), local_page(model_server.port))

    assert error.code == "integrity_mismatch"
    text = f"{error.message} {error.details}"
    assert digest(served).hex not in text and digest(wanted).hex not in text
    assert error.details == {}
