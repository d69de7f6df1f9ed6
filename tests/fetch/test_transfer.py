"""`Transfer` against the real local model server, one fault at a time.

The server counts every body byte it hands to the kernel and records every request,
so these tests read what went over the wire from ``server.requests``.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
import requests

from support.httpserver import FIXED_LAST_MODIFIED, Fault, ModelServer, content_etag
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.fetch.transfer import (
    CHUNK,
    Cancelled,
    Transfer,
    TransferOptions,
    new_session,
)
from webmodels.store.blobs import PendingBlob

MIB = 1 << 20
FAST = TransferOptions(connect_timeout_s=2.0, stall_timeout_s=0.5, backoff_s=0.01)


def blob(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def digest(data: bytes) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest())


class Downloads:
    """Builds transfers the way the job runner does, into ``tmp/dl-<hex>.partial``."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "tmp"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.progress: list[tuple[int, int | None]] = []
        self.stop_at: int | None = None  # ask to stop once this many bytes are on disk
        self.sessions: list[requests.Session] = []

    def partial(self, expected: Digest) -> Path:
        return self.dir / f"dl-{expected.hex}.partial"

    def transfer(
        self,
        urls: list[str],
        expected: Digest,
        *,
        expected_size: int | None = None,
        options: TransferOptions = FAST,
    ) -> Transfer:
        session = new_session()
        self.sessions.append(session)
        return Transfer(
            urls=urls,
            expected=expected,
            expected_size=expected_size,
            partial=self.partial(expected),
            options=options,
            session=session,
            progress=lambda loaded, total: self.progress.append((loaded, total)),
            should_stop=self._should_stop,
        )

    def run(self, urls: list[str], expected: Digest, **kwargs: Any) -> PendingBlob:
        return self.transfer(urls, expected, **kwargs).run()

    def fail(self, urls: list[str], expected: Digest, **kwargs: Any) -> HostError:
        with pytest.raises(HostError) as info:
            self.run(urls, expected, **kwargs)
        return info.value

    def _should_stop(self) -> bool:
        loaded = self.progress[-1][0] if self.progress else 0
        return self.stop_at is not None and loaded >= self.stop_at


@pytest.fixture
def downloads(tmp_path: Path) -> Iterator[Downloads]:
    made = Downloads(tmp_path)
    yield made
    for session in made.sessions:
        session.close()


def assert_delivered(result: PendingBlob, data: bytes) -> None:
    """The transfer handed back exactly `data`, verified, and cleaned up its sidecar."""
    assert result.digest == digest(data)
    assert result.size == len(data)
    assert result.temp_path.read_bytes() == data
    assert not result.temp_path.with_suffix(".json").exists()


def assert_nothing_left(downloads: Downloads, expected: Digest) -> None:
    partial = downloads.partial(expected)
    assert not partial.exists()
    assert not partial.with_suffix(".json").exists()


def resumed_at(range_header: str | None) -> int:
    match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
    assert match, f"not a resume request: Range {range_header!r}"
    return int(match.group(1))


def gets(server: ModelServer) -> list[tuple[str, int, str | None]]:
    return [(r.path, r.status, r.range) for r in server.requests if r.method == "GET"]


# --- the plain case ---------------------------------------------------------------------


def test_clean_download_is_verified_and_reported(
    model_server: ModelServer, downloads: Downloads
) -> None:
    data = blob(2 * MIB + 12345)
    url = model_server.add("model.onnx", data)

    result = downloads.run([url], digest(data))

    assert_delivered(result, data)
    assert result.temp_path == downloads.partial(digest(data))
    loaded = [done for done, _ in downloads.progress]
    assert loaded == sorted(loaded)
    assert downloads.progress[-1] == (len(data), len(data))
    assert gets(model_server) == [("/model.onnx", 200, None)]
    assert model_server.bytes_sent() == len(data)


def test_empty_file_downloads(model_server: ModelServer, downloads: Downloads) -> None:
    url = model_server.add("empty.bin", b"")

    assert_delivered(downloads.run([url], digest(b"")), b"")


# --- interrupted bodies: resume where the bytes on disk end ------------------------------


def test_dropped_connection_resumes_with_range_and_if_range(
    model_server: ModelServer, downloads: Downloads
) -> None:
    data = blob(4 * MIB)
    url = model_server.add("model.onnx", data)
    model_server.fault("model.onnx", Fault("drop", after_bytes=1_000_000))

    result = downloads.run([url], digest(data))

    assert_delivered(result, data)
    first, second = model_server.requests
    assert (first.status, first.bytes_sent) == (200, 1_000_000)
    offset = resumed_at(second.range)
    assert second.if_range == content_etag(data)  # the strong ETag, not the date
    assert second.status == 206
    # Only the bytes missing on disk are asked for again. The reset (RST) destroys
    # whatever both kernels still held, so how much of the 1,000,000 bytes reached
    # the disk depends on scheduling; what was kept is never fetched twice.
    assert 0 < offset <= 1_000_000
    assert second.bytes_sent == len(data) - offset
    assert model_server.bytes_sent() == len(data) + 1_000_000 - offset


def test_every_short_body_resumes_where_it_ended(
    model_server: ModelServer, downloads: Downloads
) -> None:
    data = blob(2 * MIB)
    url = model_server.add("model.onnx", data)
    cut = CHUNK + 5000
    model_server.fault("model.onnx", Fault("short_body", after_bytes=cut, times=3))

    result = downloads.run([url], digest(data))

    assert_delivered(result, data)
    assert [(r.status, r.range, r.if_range) for r in model_server.requests] == [
        (200, None, None),
        (206, f"bytes={cut}-", content_etag(data)),
        (206, f"bytes={2 * cut}-", content_etag(data)),
        (206, f"bytes={3 * cut}-", content_etag(data)),
    ]
    # An orderly close loses nothing in flight: three interruptions, no byte twice.
    assert model_server.bytes_sent() == len(data)


def test_stall_is_cut_by_the_stall_timeout_and_resumed(
    model_server: ModelServer, downloads: Downloads
) -> None:
    data = blob(2 * MIB)
    url = model_server.add("model.onnx", data)
    model_server.fault("model.onnx", Fault("stall", after_bytes=2 * CHUNK + 1000, seconds=10))

    began = time.monotonic()
    result = downloads.run([url], digest(data))

    assert time.monotonic() - began < 3  # 0.5 s stall timeout, not the 10 s stall
    assert_delivered(result, data)
    first, second = model_server.requests
    assert first.fault == "stall"
    assert resumed_at(second.range) == 2 * CHUNK  # the partly read third chunk is lost
    assert second.status == 206
    assert model_server.bytes_sent() == len(data) + 1000
    assert model_server.bytes_sent() <= len(data) + CHUNK


def test_new_transfer_resumes_what_a_cancelled_one_left(
    model_server: ModelServer, downloads: Downloads
) -> None:
    data = blob(2 * MIB)
    url = model_server.add("model.onnx", data)
    expected = digest(data)
    downloads.stop_at = 2 * CHUNK

    with pytest.raises(Cancelled):
        downloads.run([url], expected)  # as if the host were killed here

    partial = downloads.partial(expected)
    assert partial.read_bytes() == data[: 2 * CHUNK]
    sidecar = json.loads(partial.with_suffix(".json").read_text())
    assert sidecar["url"] == url
    assert sidecar["etag"] == content_etag(data)

    downloads.stop_at = None
    model_server.reset_stats()
    result = downloads.run([url], expected)

    assert_delivered(result, data)
    (again,) = model_server.requests
    assert (again.range, again.if_range, again.status) == (
        f"bytes={2 * CHUNK}-",
        content_etag(data),
        206,
    )
    assert model_server.bytes_sent() == len(data) - 2 * CHUNK
    assert downloads.progress[-1] == (len(data), len(data))


def test_resume_uses_last_modified_when_there_is_no_etag(
    model_server: ModelServer, downloads: Downloads
) -> None:
    data = blob(2 * MIB)
    url = model_server.add("model.onnx", data, etag=None)
    model_server.fault("model.onnx", Fault("stall", after_bytes=CHUNK + 1, seconds=10))

    assert_delivered(downloads.run([url], digest(data)), data)

    second = model_server.requests[1]
    assert resumed_at(second.range) == CHUNK
    assert second.if_range == formatdate(FIXED_LAST_MODIFIED, usegmt=True)
    assert second.status == 206


def test_no_validator_means_starting_over(model_server: ModelServer, downloads: Downloads) -> None:
    data = blob(2 * MIB)
    url = model_server.add("model.onnx", data, etag=None, last_modified=None)
    model_server.fault("model.onnx", Fault("stall", after_bytes=CHUNK + 1, seconds=10))

    assert_delivered(downloads.run([url], digest(data)), data)

    assert gets(model_server) == [("/model.onnx", 200, None), ("/model.onnx", 200, None)]


@pytest.mark.parametrize(
    "sidecar",
    [None, "not json", '{"url": 5}', "other-url"],
    ids=["no sidecar", "garbage", "bad field", "other url"],
)
def test_bytes_on_disk_without_a_trusted_sidecar_are_not_spliced(
    model_server: ModelServer, downloads: Downloads, sidecar: str | None
) -> None:
    data = blob(1 * MIB)
    url = model_server.add("model.onnx", data)
    expected = digest(data)
    partial = downloads.partial(expected)
    partial.write_bytes(b"\0" * 1000)  # bytes of unknown origin
    if sidecar == "other-url":
        other = {"url": url + "?old", "etag": content_etag(data), "total": len(data)}
        partial.with_suffix(".json").write_text(json.dumps(other))
    elif sidecar is not None:
        partial.with_suffix(".json").write_text(sidecar)

    result = downloads.run([url], expected)

    assert_delivered(result, data)
    assert gets(model_server) == [("/model.onnx", 200, None)]


def test_partial_that_is_already_complete_still_ends_verified(
    model_server: ModelServer, downloads: Downloads
) -> None:
    # Killed after the last byte but before the hash check: the server answers 416
    # to "bytes=SIZE-"; the transfer starts over rather than fail.
    data = blob(1 * MIB)
    url = model_server.add("model.onnx", data)
    expected = digest(data)
    partial = downloads.partial(expected)
    partial.write_bytes(data)
    state = {"url": url, "etag": content_etag(data), "last_modified": None, "total": len(data)}
    partial.with_suffix(".json").write_text(json.dumps(state))

    assert_delivered(downloads.run([url], expected), data)

    assert gets(model_server)[0] == ("/model.onnx", 416, f"bytes={len(data)}-")


# --- a changed or misbehaving server: never splice, never return wrong bytes ----------


@pytest.mark.parametrize("validator", ["etag", "last_modified"])
def test_file_changed_mid_download_starts_over_with_the_new_bytes(
    model_server: ModelServer, downloads: Downloads, validator: str
) -> None:
    old, new = blob(2 * MIB, seed=1), blob(2 * MIB + 7, seed=2)
    etag_kwargs: dict[str, Any] = {"etag": None} if validator == "last_modified" else {}
    url = model_server.add("model.onnx", old, **etag_kwargs)
    model_server.fault("model.onnx", Fault("stall", after_bytes=CHUNK + 1, seconds=10))
    model_server.fault("model.onnx", Fault("change_etag", data=new))

    result = downloads.run([url], digest(new))

    assert_delivered(result, new)
    first, second = model_server.requests
    assert (first.status, first.fault) == (200, "stall")
    assert resumed_at(second.range) == CHUNK
    assert second.if_range is not None
    assert second.status == 200  # If-Range failed: the whole new file
    assert second.bytes_sent == len(new)


def test_file_changed_mid_download_fails_integrity_for_the_old_hash(
    model_server: ModelServer, downloads: Downloads
) -> None:
    old, new = blob(2 * MIB, seed=1), blob(2 * MIB, seed=2)
    url = model_server.add("model.onnx", old)
    model_server.fault("model.onnx", Fault("stall", after_bytes=CHUNK + 1, seconds=10))
    model_server.fault("model.onnx", Fault("change_etag", data=new))

    error = downloads.fail([url], digest(old))

    assert error.code == "integrity_mismatch"
    assert error.details["actual"] == digest(new).hex
    assert_nothing_left(downloads, digest(old))
    assert [r.status for r in model_server.requests] == [200, 200]  # not retried


def test_ignored_range_starts_over(model_server: ModelServer, downloads: Downloads) -> None:
    data = blob(2 * MIB)
    url = model_server.add("model.onnx", data)
    model_server.fault("model.onnx", Fault("stall", after_bytes=CHUNK + 1, seconds=10))
    model_server.fault("model.onnx", Fault("ignore_range"))

    assert_delivered(downloads.run([url], digest(data)), data)

    second = model_server.requests[1]
    assert resumed_at(second.range) == CHUNK
    assert (second.status, second.bytes_sent) == (200, len(data))


def test_wrong_bytes_are_never_returned(model_server: ModelServer, downloads: Downloads) -> None:
    data = blob(1 * MIB)
    url = model_server.add("model.onnx", data)
    model_server.fault("model.onnx", Fault("wrong_bytes", after_bytes=1000))

    error = downloads.fail([url], digest(data))

    assert error.code == "integrity_mismatch"
    assert error.details["expected"] == digest(data).hex
    assert_nothing_left(downloads, digest(data))
    assert len(model_server.requests) == 1  # the mirror that lied is not asked again


def test_wrong_bytes_on_one_mirror_falls_back_to_the_next(
    model_server: ModelServer, downloads: Downloads
) -> None:
    data = blob(1 * MIB)
    bad = model_server.add("bad/model.onnx", data)
    good = model_server.add("good/model.onnx", data)
    model_server.fault("bad/model.onnx", Fault("wrong_bytes", after_bytes=1000, times=None))

    assert_delivered(downloads.run([bad, good], digest(data)), data)

    assert gets(model_server) == [
        ("/bad/model.onnx", 200, None),
        ("/good/model.onnx", 200, None),  # from byte 0: nothing of the liar is kept
    ]


def test_bad_content_range_on_a_whole_file_request_is_not_trusted(
    model_server: ModelServer, downloads: Downloads
) -> None:
    data = blob(1 * MIB)
    url = model_server.add("model.onnx", data)
    model_server.fault("model.onnx", Fault("bad_content_range"))

    assert_delivered(downloads.run([url], digest(data)), data)

    assert gets(model_server) == [("/model.onnx", 206, None), ("/model.onnx", 200, None)]


def test_bad_content_range_on_resume_is_not_spliced(
    model_server: ModelServer, downloads: Downloads
) -> None:
    data = blob(2 * MIB)
    url = model_server.add("model.onnx", data)
    model_server.fault("model.onnx", Fault("stall", after_bytes=CHUNK + 1, seconds=10))
    model_server.fault("model.onnx", Fault("bad_content_range"))

    assert_delivered(downloads.run([url], digest(data)), data)

    assert gets(model_server) == [
        ("/model.onnx", 200, None),
        ("/model.onnx", 206, f"bytes={CHUNK}-"),  # answered from CHUNK + 1: dropped
        ("/model.onnx", 200, None),
    ]


def test_bad_content_range_forever_fails_cleanly(
    model_server: ModelServer, downloads: Downloads
) -> None:
    data = blob(1 * MIB)
    url = model_server.add("model.onnx", data)
    model_server.fault("model.onnx", Fault("bad_content_range", times=None))
    options = TransferOptions(stall_timeout_s=0.5, backoff_s=0.01, max_attempts=3)

    error = downloads.fail([url], digest(data), options=options)

    assert error.code == "download_failed"
    partial = downloads.partial(digest(data))
    assert not partial.exists() or partial.stat().st_size == 0  # no wrong bytes kept
    assert len(model_server.requests) == 3


# --- statuses, mirrors, redirects -----------------------------------------------------


def test_passing_server_errors_are_retried(model_server: ModelServer, downloads: Downloads) -> None:
    data = blob(1 * MIB)
    url = model_server.add("model.onnx", data)
    model_server.fault("model.onnx", Fault("status", status=503, times=3))

    assert_delivered(downloads.run([url], digest(data)), data)

    assert [r.status for r in model_server.requests] == [503, 503, 503, 200]


def test_missing_file_on_one_mirror_uses_the_next(
    model_server: ModelServer, downloads: Downloads
) -> None:
    data = blob(1 * MIB)
    url = model_server.add("good/model.onnx", data)

    assert_delivered(downloads.run([model_server.url("gone/model.onnx"), url], digest(data)), data)

    assert [(r.path, r.status) for r in model_server.requests] == [
        ("/gone/model.onnx", 404),
        ("/good/model.onnx", 200),
    ]


def test_missing_on_every_mirror_is_download_failed(
    model_server: ModelServer, downloads: Downloads
) -> None:
    expected = digest(b"anything")
    urls = [model_server.url("a/model.onnx"), model_server.url("b/model.onnx")]

    error = downloads.fail(urls, expected)

    assert error.code == "download_failed"
    assert "404" in error.message
    assert_nothing_left(downloads, expected)
    assert len(model_server.requests) == 2  # a 404 is not retried


@pytest.mark.parametrize("status", [403, 410])
def test_refusal_is_not_retried(
    model_server: ModelServer, downloads: Downloads, status: int
) -> None:
    data = blob(1000)
    url = model_server.add("model.onnx", data)
    model_server.fault("model.onnx", Fault("status", status=status, times=None))

    assert downloads.fail([url], digest(data)).code == "download_failed"
    assert len(model_server.requests) == 1


def test_redirect_chain_is_followed(model_server: ModelServer, downloads: Downloads) -> None:
    data = blob(1 * MIB)
    model_server.add("blobs/model.onnx", data)
    model_server.redirect("b", "/blobs/model.onnx", status=307)
    start = model_server.redirect("a", "/b")

    assert_delivered(downloads.run([start], digest(data)), data)

    assert [(r.path, r.status) for r in model_server.requests] == [
        ("/a", 302),
        ("/b", 307),
        ("/blobs/model.onnx", 200),
    ]


def test_resume_goes_through_the_redirects_again(
    model_server: ModelServer, downloads: Downloads
) -> None:
    data = blob(2 * MIB)
    model_server.add("blobs/model.onnx", data)
    model_server.redirect("b", "/blobs/model.onnx")
    start = model_server.redirect("a", "/b")
    model_server.fault("blobs/model.onnx", Fault("stall", after_bytes=CHUNK + 1, seconds=10))

    assert_delivered(downloads.run([start], digest(data)), data)

    final = [r for r in model_server.requests if r.path == "/blobs/model.onnx"]
    assert [(r.status, r.range) for r in final] == [(200, None), (206, f"bytes={CHUNK}-")]
    assert final[1].if_range == content_etag(data)


def test_too_many_redirects_fail_the_mirror(
    model_server: ModelServer, downloads: Downloads
) -> None:
    loop = model_server.redirect("loop", "/loop")
    options = TransferOptions(stall_timeout_s=0.5, backoff_s=0.01, max_redirects=3)

    error = downloads.fail([loop], digest(b"x"), options=options)

    assert error.code == "download_failed"
    assert "redirect" in error.message


def test_declared_size_mismatch_fails_before_the_body(
    model_server: ModelServer, downloads: Downloads
) -> None:
    data = blob(8 * MIB)
    url = model_server.add("model.onnx", data)

    error = downloads.fail([url], digest(data), expected_size=len(data) - 1)

    assert error.code == "integrity_mismatch"
    assert error.details == {"expected_size": len(data) - 1, "served_size": len(data)}
    assert all(loaded == 0 for loaded, _ in downloads.progress)
    assert_nothing_left(downloads, digest(data))
    assert len(model_server.requests) == 1
    assert model_server.bytes_sent() < len(data)  # only what the kernels buffered


def test_declared_size_that_matches_downloads(
    model_server: ModelServer, downloads: Downloads
) -> None:
    data = blob(1 * MIB)
    url = model_server.add("model.onnx", data)

    assert_delivered(downloads.run([url], digest(data), expected_size=len(data)), data)


# --- no network, cancellation, retries exhausted, disk full ---------------------------


def test_unreachable_server_is_network_unavailable_fast(downloads: Downloads) -> None:
    server = ModelServer().start()
    urls = [server.url("model.onnx"), server.url("mirror/model.onnx")]
    server.stop()  # connection refused from now on

    began = time.monotonic()
    error = downloads.fail(urls, digest(b"x"))

    assert error.code == "network_unavailable"
    assert time.monotonic() - began < 2


def test_should_stop_cancels_and_keeps_the_partial(
    model_server: ModelServer, downloads: Downloads
) -> None:
    data = blob(4 * MIB)
    url = model_server.add("model.onnx", data)
    downloads.stop_at = 1

    with pytest.raises(Cancelled):
        downloads.run([url], digest(data))

    partial = downloads.partial(digest(data))
    assert partial.read_bytes() == data[:CHUNK]  # the first chunk, then it stopped
    assert partial.with_suffix(".json").exists()
    assert len(model_server.requests) == 1


def test_should_stop_interrupts_the_backoff(
    model_server: ModelServer, downloads: Downloads
) -> None:
    url = model_server.add("model.onnx", b"x")
    model_server.fault("model.onnx", Fault("status", status=503, times=None))
    options = TransferOptions(backoff_s=30.0, backoff_max_s=30.0)
    transfer = downloads.transfer([url], digest(b"x"), options=options)
    transfer.should_stop = lambda: len(model_server.requests) >= 1

    began = time.monotonic()
    with pytest.raises(Cancelled):
        transfer.run()

    assert time.monotonic() - began < 2


def test_retries_are_bounded(model_server: ModelServer, downloads: Downloads) -> None:
    url = model_server.add("model.onnx", b"x")
    model_server.fault("model.onnx", Fault("status", status=503, times=None))
    options = TransferOptions(stall_timeout_s=0.5, backoff_s=0.01, max_attempts=4)

    error = downloads.fail([url], digest(b"x"), options=options)

    assert error.code == "download_failed"
    assert [r.status for r in model_server.requests] == [503] * 4


@pytest.fixture
def small_disk(downloads: Downloads) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted where the partial files go."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command to make a small tmpfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(downloads.dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield downloads.dir
    finally:
        subprocess.run(["umount", str(downloads.dir)], check=True)


def test_disk_too_small_is_disk_full_before_writing(
    model_server: ModelServer, downloads: Downloads, small_disk: Path
) -> None:
    data = blob(4 * MIB)
    url = model_server.add("model.onnx", data)

    error = downloads.fail([url], digest(data))

    assert error.code == "disk_full"
    assert error.details["needed"] == len(data)
    assert downloads.partial(digest(data)).stat().st_size == 0


def test_disk_filling_up_while_writing_is_disk_full(
    model_server: ModelServer,
    downloads: Downloads,
    small_disk: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The free-space check passes (another process freed space, then took it back):
    # the write itself hits ENOSPC.
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=1 << 40))
    data = blob(4 * MIB)
    url = model_server.add("model.onnx", data)

    error = downloads.fail([url], digest(data))

    assert error.code == "disk_full"
    assert len(model_server.requests) == 1  # not retried


def test_full_disk_is_disk_full(
    model_server: ModelServer, downloads: Downloads, small_disk: Path
) -> None:
    (small_disk / "filler").write_bytes(b"\0" * (1 * MIB))  # not one page left
    data = blob(100_000)
    url = model_server.add("model.onnx", data)

    error = downloads.fail([url], digest(data))

    assert error.code == "disk_full"


def test_offline_with_a_partial_on_disk_is_network_unavailable_fast(
    model_server: ModelServer, downloads: Downloads
) -> None:
    data = blob(2 * MIB)
    url = model_server.add("model.onnx", data)
    downloads.stop_at = CHUNK
    with pytest.raises(Cancelled):
        downloads.run([url], digest(data))  # a killed host left CHUNK bytes
    downloads.stop_at = None
    model_server.stop()

    began = time.monotonic()
    error = downloads.fail([url], digest(data), options=TransferOptions(backoff_s=0.5))

    assert error.code == "network_unavailable"
    assert time.monotonic() - began < 2
    assert downloads.partial(digest(data)).stat().st_size == CHUNK  # kept for later


def test_damaged_bytes_on_disk_are_downloaded_again(
    model_server: ModelServer, downloads: Downloads
) -> None:
    # The host was killed (or the machine lost power) and the partial file's bytes
    # are not what was received; the mirror is not to blame.
    data = blob(2 * MIB)
    url = model_server.add("model.onnx", data)
    downloads.stop_at = 2 * CHUNK
    with pytest.raises(Cancelled):
        downloads.run([url], digest(data))
    downloads.stop_at = None
    partial = downloads.partial(digest(data))
    with partial.open("r+b") as fh:
        fh.write(b"\0" * 4096)
    model_server.reset_stats()

    assert_delivered(downloads.run([url], digest(data)), data)

    assert gets(model_server) == [
        ("/model.onnx", 206, f"bytes={2 * CHUNK}-"),
        ("/model.onnx", 200, None),
    ]


def test_mirror_sending_wrong_ranges_is_blamed_after_one_fresh_try(
    model_server: ModelServer, downloads: Downloads
) -> None:
    data = blob(2 * MIB)
    url = model_server.add("model.onnx", data)
    model_server.fault("model.onnx", Fault("stall", after_bytes=CHUNK + 1, seconds=10))
    model_server.fault("model.onnx", Fault("wrong_bytes", after_bytes=10, times=None))

    error = downloads.fail([url], digest(data))

    assert error.code == "integrity_mismatch"
    assert_nothing_left(downloads, digest(data))
    assert gets(model_server) == [
        ("/model.onnx", 200, None),
        ("/model.onnx", 206, f"bytes={CHUNK}-"),  # spliced: maybe the disk's fault
        ("/model.onnx", 200, None),  # from byte 0, still wrong: the mirror's fault
    ]
