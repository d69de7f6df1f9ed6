"""The fault-injecting model server, driven by a real ``requests`` client."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from email.utils import formatdate
from pathlib import Path

import pytest
import requests

from support.httpserver import (
    FIXED_LAST_MODIFIED,
    ByteRange,
    Fault,
    ModelServer,
    Unsatisfiable,
    content_etag,
    if_range_holds,
    parse_range,
)

DATA = bytes(range(256)) * 400  # 102,400 bytes
TOTAL = len(DATA)
LAST_MODIFIED = formatdate(FIXED_LAST_MODIFIED, usegmt=True)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


READ = 4096  # urllib3 drops a partly filled read when the body breaks off: cut on multiples


def read_until_error(response: requests.Response) -> tuple[bytes, Exception | None]:
    """The body bytes that arrived, and the exception that ended the read, if any."""
    got = bytearray()
    try:
        for chunk in response.iter_content(chunk_size=READ):
            got += chunk
    except requests.RequestException as exc:
        return bytes(got), exc
    return bytes(got), None


@pytest.fixture
def server(model_server: ModelServer) -> ModelServer:
    model_server.add("model.bin", DATA)
    return model_server


# --- plain serving --------------------------------------------------------------------


def test_full_get_has_body_and_validators(server: ModelServer) -> None:
    response = requests.get(server.url("model.bin"), timeout=5)

    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["Content-Length"] == str(TOTAL)
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["ETag"] == content_etag(DATA)
    assert response.headers["ETag"] == f'"{sha(DATA)[:16]}"'
    assert response.headers["Last-Modified"] == LAST_MODIFIED


def test_head_sends_headers_only(server: ModelServer) -> None:
    response = requests.head(server.url("model.bin"), headers={"Range": "bytes=5-"}, timeout=5)

    assert response.status_code == 200  # Range is defined for GET only
    assert response.headers["Content-Length"] == str(TOTAL)
    assert server.bytes_sent() == 0


def test_unknown_path_is_404_and_validators_can_be_left_out(model_server: ModelServer) -> None:
    model_server.add("/bare.bin", b"abc", etag=None, last_modified=None)

    assert requests.get(model_server.url("missing.bin"), timeout=5).status_code == 404
    bare = requests.get(model_server.url("bare.bin"), timeout=5)
    assert bare.content == b"abc"
    assert "ETag" not in bare.headers
    assert "Last-Modified" not in bare.headers


def test_file_from_disk_serves_ranges(model_server: ModelServer, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(DATA * 3)
    url = model_server.add_file("big.bin", path)

    whole = requests.get(url, timeout=5)
    tail = requests.get(url, headers={"Range": f"bytes={TOTAL}-"}, timeout=5)

    assert whole.content == DATA * 3
    assert whole.headers["ETag"].startswith('"')
    assert tail.status_code == 206
    assert tail.content == DATA * 2


def test_large_download_is_fast(model_server: ModelServer) -> None:
    data = b"\x5a" * (32 * 1024 * 1024)
    url = model_server.add("large.bin", data)

    began = time.monotonic()
    with requests.get(url, stream=True, timeout=5) as response:
        size = sum(len(c) for c in response.iter_content(chunk_size=1024 * 1024))
    elapsed = time.monotonic() - began

    assert size == len(data)
    assert len(data) / elapsed > 50 * 1024 * 1024, f"{elapsed:.2f} s for 32 MiB"


# --- ranges and If-Range ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=100-", 100, TOTAL - 1),
        ("bytes=0-0", 0, 0),
        ("bytes=10-19", 10, 19),
        ("bytes=100-999999999", 100, TOTAL - 1),
        ("bytes=-50", TOTAL - 50, TOTAL - 1),
    ],
)
def test_range_gets_206_with_content_range(
    server: ModelServer, header: str, start: int, end: int
) -> None:
    response = requests.get(server.url("model.bin"), headers={"Range": header}, timeout=5)

    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{TOTAL}"
    assert response.headers["Content-Length"] == str(end - start + 1)
    assert response.content == DATA[start : end + 1]


def test_range_past_the_end_is_416(server: ModelServer) -> None:
    response = requests.get(
        server.url("model.bin"), headers={"Range": f"bytes={TOTAL}-"}, timeout=5
    )

    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{TOTAL}"
    assert response.content == b""


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=5-9", ByteRange(5, 9)),
        ("bytes = 5-", ByteRange(5, 9)),
        ("bytes=-3", ByteRange(7, 9)),
        ("bytes=-30", ByteRange(0, 9)),
        ("bytes=10-", Unsatisfiable.RANGE),
        ("bytes=-0", Unsatisfiable.RANGE),
        ("bytes=9-5", None),
        ("bytes=0-1,4-5", None),
        ("items=0-1", None),
        ("bytes=a-b", None),
        ("bytes=-", None),
        ("bytes=5", None),
    ],
)
def test_parse_range(header: str, expected: ByteRange | Unsatisfiable | None) -> None:
    assert parse_range(header, 10) == expected


@pytest.mark.parametrize(
    ("if_range", "etag", "holds"),
    [
        ('"abc"', '"abc"', True),
        ('"abc"', '"abd"', False),
        ('W/"abc"', 'W/"abc"', False),
        ('W/"abc"', '"abc"', False),
        ('"abc"', 'W/"abc"', False),
        ('"abc"', None, False),
        (LAST_MODIFIED, None, True),
        (formatdate(FIXED_LAST_MODIFIED + 1, usegmt=True), None, False),
        ("not a date", None, False),
    ],
)
def test_if_range_holds(if_range: str, etag: str | None, holds: bool) -> None:
    assert if_range_holds(if_range, etag=etag, last_modified=FIXED_LAST_MODIFIED) is holds


def test_if_range_match_and_mismatch(server: ModelServer) -> None:
    url = server.url("model.bin")
    etag = content_etag(DATA)

    def get(if_range: str) -> requests.Response:
        headers = {"Range": "bytes=1000-", "If-Range": if_range}
        return requests.get(url, headers=headers, timeout=5)

    assert get(etag).status_code == 206
    assert get(LAST_MODIFIED).status_code == 206
    stale = get('"0000000000000000"')
    assert stale.status_code == 200
    assert stale.content == DATA
    assert get(formatdate(0, usegmt=True)).status_code == 200


def test_weak_etag_never_matches_if_range(model_server: ModelServer) -> None:
    url = model_server.add("weak.bin", DATA, etag='W/"v1"')

    response = requests.get(url, headers={"Range": "bytes=10-", "If-Range": 'W/"v1"'}, timeout=5)

    assert response.headers["ETag"] == 'W/"v1"'
    assert response.status_code == 200
    assert response.content == DATA


# --- redirects ------------------------------------------------------------------------


def test_redirect_chain_across_servers(server: ModelServer) -> None:
    with ModelServer() as mirror:
        mirror.redirect("start", server.url("hop"), status=301)
        server.redirect("hop", "/model.bin", status=307)

        response = requests.get(mirror.url("start"), timeout=5)

    assert [r.status_code for r in response.history] == [301, 307]
    assert response.url == server.url("model.bin")
    assert response.content == DATA
    assert response.history[1].headers["Location"] == server.url("model.bin")


# --- faults, as the client sees them --------------------------------------------------


def test_drop_resets_after_some_bytes(server: ModelServer) -> None:
    server.fault("model.bin", Fault("drop", after_bytes=7 * READ))

    with requests.get(server.url("model.bin"), stream=True, timeout=5) as response:
        got, error = read_until_error(response)

    assert response.headers["Content-Length"] == str(TOTAL)
    assert got == DATA[: 7 * READ]
    assert server.bytes_sent() == 7 * READ
    assert isinstance(error, requests.exceptions.ChunkedEncodingError)
    assert "reset" in str(error).lower() or "Errno 104" in str(error)
    assert requests.get(server.url("model.bin"), timeout=5).content == DATA  # times=1


def test_short_body_declares_all_sends_less(server: ModelServer) -> None:
    server.fault("model.bin", Fault("short_body", after_bytes=3 * READ))

    with requests.get(server.url("model.bin"), stream=True, timeout=5) as response:
        got, error = read_until_error(response)

    assert response.headers["Content-Length"] == str(TOTAL)
    assert got == DATA[: 3 * READ]
    assert isinstance(error, requests.exceptions.ChunkedEncodingError)
    assert "IncompleteRead" in str(error)
    assert server.bytes_sent("model.bin") == 3 * READ


def test_stall_times_out_the_reader(server: ModelServer) -> None:
    server.fault("model.bin", Fault("stall", after_bytes=READ, seconds=10))

    began = time.monotonic()
    with requests.get(server.url("model.bin"), stream=True, timeout=0.5) as response:
        got, error = read_until_error(response)

    assert got == DATA[:READ]
    assert isinstance(error, requests.exceptions.ConnectionError)
    assert "timed out" in str(error).lower()
    assert time.monotonic() - began < 3


def test_change_etag_makes_a_new_version(server: ModelServer) -> None:
    url = server.url("model.bin")
    old_etag = requests.head(url, timeout=5).headers["ETag"]
    new_data = DATA[::-1]
    server.fault("model.bin", Fault("change_etag", data=new_data))

    response = requests.get(url, headers={"Range": "bytes=100-", "If-Range": old_etag}, timeout=5)

    assert response.status_code == 200
    assert response.headers["ETag"] == content_etag(new_data) != old_etag
    assert response.headers["Last-Modified"] != LAST_MODIFIED
    assert response.content == new_data
    assert requests.get(url, timeout=5).headers["ETag"] == content_etag(new_data)  # it stays


def test_change_etag_without_new_content(server: ModelServer) -> None:
    url = server.url("model.bin")
    server.fault("model.bin", Fault("change_etag"))

    response = requests.get(url, timeout=5)

    assert response.headers["ETag"] != content_etag(DATA)
    assert response.content == DATA


def test_ignore_range_sends_everything(server: ModelServer) -> None:
    server.fault("model.bin", Fault("ignore_range"))

    response = requests.get(server.url("model.bin"), headers={"Range": "bytes=500-"}, timeout=5)

    assert response.status_code == 200
    assert "Content-Range" not in response.headers
    assert response.content == DATA


def test_wrong_bytes_same_length_other_hash(server: ModelServer) -> None:
    server.fault("model.bin", Fault("wrong_bytes", after_bytes=100))

    response = requests.get(server.url("model.bin"), timeout=5)

    assert response.headers["ETag"] == content_etag(DATA)
    assert len(response.content) == TOTAL
    assert response.content[:100] == DATA[:100]
    assert sha(response.content) != sha(DATA)


def test_bad_content_range_is_off_by_one(server: ModelServer) -> None:
    server.fault("model.bin", Fault("bad_content_range"))

    response = requests.get(server.url("model.bin"), headers={"Range": "bytes=100-"}, timeout=5)

    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 101-{TOTAL - 1}/{TOTAL}"
    assert response.content == DATA[101:]


def test_status_fault_then_recovery(server: ModelServer) -> None:
    fault = Fault("status", status=503, times=2, headers=(("Retry-After", "1"),))
    server.fault("model.bin", fault)
    server.fault("nowhere", Fault("status", status=500))
    url = server.url("model.bin")

    first, second, third = (requests.get(url, timeout=5) for _ in range(3))

    assert (first.status_code, second.status_code, third.status_code) == (503, 503, 200)
    assert first.headers["Retry-After"] == "1"
    assert first.content == b""
    assert requests.get(server.url("nowhere"), timeout=5).status_code == 500


def test_slow_throttles(server: ModelServer) -> None:
    server.fault("model.bin", Fault("slow", rate=200_000))

    began = time.monotonic()
    response = requests.get(server.url("model.bin"), timeout=5)
    elapsed = time.monotonic() - began

    assert response.content == DATA
    assert 0.4 < elapsed < 2.0  # 102,400 bytes at 200,000 B/s: ~0.5 s


def test_faults_queue_in_order_and_forever(server: ModelServer) -> None:
    url = server.url("model.bin")
    server.fault("model.bin", Fault("status", status=404))
    server.fault("model.bin", Fault("ignore_range", times=None))
    ranged = {"Range": "bytes=5-"}

    statuses = [requests.get(url, headers=ranged, timeout=5).status_code for _ in range(4)]
    head = requests.head(url, timeout=5)

    assert statuses == [404, 200, 200, 200]
    assert head.status_code == 200  # faults act on GET unless methods says otherwise
    assert [r.fault for r in server.requests] == [
        "status",
        "ignore_range",
        "ignore_range",
        "ignore_range",
        None,
    ]
    server.clear_faults("model.bin")
    assert requests.get(url, headers=ranged, timeout=5).status_code == 206


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times"):
        Fault("drop", times=0)
    with pytest.raises(ValueError, match="status"):
        Fault("status", status=42)


def test_server_is_quiet(server: ModelServer, capfd: pytest.CaptureFixture[str]) -> None:
    server.fault("model.bin", Fault("drop", after_bytes=10))
    with requests.get(server.url("model.bin"), stream=True, timeout=5) as response:
        read_until_error(response)
    requests.get(server.url("missing"), timeout=5)

    assert capfd.readouterr().err == ""


# --- stopping -------------------------------------------------------------------------


def test_stop_refuses_new_connections_and_restart_reuses_the_port() -> None:
    server = ModelServer().start()
    url = server.add("model.bin", DATA)
    server.stop()

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=1)

    server.start()
    try:
        assert requests.get(url, timeout=5).content == DATA
    finally:
        server.stop()


def test_stop_cuts_a_stalled_download(server: ModelServer) -> None:
    server.fault("model.bin", Fault("stall", after_bytes=READ, seconds=60))
    outcome: dict[str, object] = {}

    def download() -> None:
        with requests.get(server.url("model.bin"), stream=True, timeout=30) as response:
            outcome["got"], outcome["error"] = read_until_error(response)

    thread = threading.Thread(target=download)
    thread.start()
    while server.bytes_sent() < READ:
        time.sleep(0.01)
    began = time.monotonic()
    server.stop()
    thread.join(5)

    assert not thread.is_alive()
    assert time.monotonic() - began < 3
    assert outcome["got"] == DATA[:READ]
    assert isinstance(outcome["error"], requests.exceptions.ChunkedEncodingError)


def test_stop_cuts_idle_keep_alive_connections(server: ModelServer) -> None:
    with requests.Session() as session:
        assert session.get(server.url("model.bin"), timeout=5).status_code == 200
        began = time.monotonic()
        server.stop()
        assert time.monotonic() - began < 1
        with pytest.raises(requests.ConnectionError):
            session.get(server.url("model.bin"), timeout=1)


# --- accounting -----------------------------------------------------------------------


def test_bytes_sent_and_transfers_are_exact(server: ModelServer) -> None:
    server.add("other.bin", b"x" * 10)
    url = server.url("model.bin")
    server.fault("model.bin", Fault("drop", after_bytes=777))

    with requests.get(url, stream=True, timeout=5) as response:
        read_until_error(response)
    requests.get(url, headers={"Range": "bytes=777-"}, timeout=5)
    requests.get(url, headers={"Range": f"bytes={TOTAL}-"}, timeout=5)
    requests.head(url, timeout=5)
    requests.get(server.url("other.bin"), timeout=5)

    assert server.bytes_sent("model.bin") == TOTAL
    assert server.bytes_sent() == TOTAL + 10
    assert server.transfers("model.bin") == 2
    assert server.transfers("/other.bin") == 1
    records = [(r.method, r.status, r.range, r.bytes_sent) for r in server.requests]
    assert records == [
        ("GET", 200, None, 777),
        ("GET", 206, "bytes=777-", TOTAL - 777),
        ("GET", 416, f"bytes={TOTAL}-", 0),
        ("HEAD", 200, None, 0),
        ("GET", 200, None, 10),
    ]

    server.reset_stats()
    assert (server.bytes_sent(), server.requests, server.transfers("model.bin")) == (0, [], 0)


def test_concurrent_downloads_are_all_counted(server: ModelServer) -> None:
    server.fault("model.bin", Fault("slow", rate=1_000_000, times=None))
    results: list[bytes] = []

    def download() -> None:
        results.append(requests.get(server.url("model.bin"), timeout=5).content)

    threads = [threading.Thread(target=download) for _ in range(4)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)

    assert results == [DATA] * 4
    assert time.monotonic() - began < 0.5  # served side by side, not one after another
    assert server.transfers("model.bin") == 4
    assert server.bytes_sent("model.bin") == 4 * TOTAL
