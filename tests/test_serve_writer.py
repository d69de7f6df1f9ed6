"""The frame writer never sends a frame over 1 MiB: an oversized reply becomes
``too_large`` for the same request id (a bigger frame would kill the browser port)."""

from __future__ import annotations

import json
import os
import struct
import threading

from webmodels.serve import FrameWriter


def read_frame(fd: int) -> dict[str, object]:
    (length,) = struct.unpack("=I", os.read(fd, 4))
    body = b""
    while len(body) < length:
        body += os.read(fd, length - len(body))
    return json.loads(body)  # type: ignore[no-any-return]


def test_oversized_reply_becomes_too_large() -> None:
    read_fd, write_fd = os.pipe()
    try:
        writer = FrameWriter(write_fd)
        writer.send({"id": 9, "ok": True, "result": {"blob": "x" * (1024 * 1024)}})
        reply = read_frame(read_fd)
        assert reply["id"] == 9 and reply["ok"] is False
        assert reply["error"]["code"] == "too_large"  # type: ignore[index]
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_concurrent_sends_never_interleave() -> None:
    read_fd, write_fd = os.pipe()
    writer = FrameWriter(write_fd)
    payload = "y" * 200_000  # larger than a pipe buffer: writes happen in pieces

    def send(n: int) -> None:
        writer.send({"id": n, "ok": True, "result": {"p": payload}})

    threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    seen = sorted(read_frame(read_fd)["id"] for _ in threads)  # type: ignore[type-var]
    for t in threads:
        t.join()
    os.close(read_fd)
    os.close(write_fd)
    assert seen == list(range(6))


def test_closed_port_marks_writer_broken() -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    writer = FrameWriter(write_fd)
    writer.send({"id": 1, "ok": True, "result": {}})
    assert writer.broken
    os.close(write_fd)
