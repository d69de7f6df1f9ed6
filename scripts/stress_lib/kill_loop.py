"""The cheap kill cycle of `scripts/stress --only kills` (stress_lib/kill_points.py):
hosts and CLI commands forked from this process, which has imported the host's modules
once, so a restart costs a fork (a few ms) instead of an interpreter start (about
0.5 s); each is SIGKILLed at a random moment of its work.

A forked child runs the real entry point (`webmodels.cli.main.main`, as
`python -m webmodels` does) with its own environment and standard streams, and ends
with `os._exit`: nothing of the harness runs in it. The harness stays single-threaded
(a fork copies only the calling thread, so no lock can be held by another), closes
every SQLite connection before it forks, and flushes its own output first (a child's
`serve` would otherwise send the harness's buffered text down the frame pipe).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import signal
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HEADER = struct.Struct("=I")
KILLED = -signal.SIGKILL  # a child's exit status when SIGKILL ended it
PIECE = 16 * 1024  # bytes of a COS write chunk: small files, several chunks each


def env_for(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A child's environment: this one's without WEBMODELS_*, its store `home`, and
    `extra` (e.g. WEBMODELS_STORE_SEGMENTS=1)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
    env["WEBMODELS_HOME"] = str(home)
    env["WEBMODELS_CONFIG"] = str(home / "no-config.toml")
    env.update(extra or {})
    return env


def fork_child(
    body: Callable[[], int],
    *,
    stdin: int | None = None,
    stdout: int | None = None,
    close: tuple[int, ...] = (),
) -> int:
    """Run `body` in a forked child with its streams on `stdin`/`stdout` (else
    /dev/null), stderr on /dev/null and the descriptors `close` (this process's ends
    of its pipes) closed; the child's pid. `body`'s return value, or 70 when it
    raised, is the exit status."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull if stdin is None else stdin, 0)
        os.dup2(devnull if stdout is None else stdout, 1)
        os.dup2(devnull, 2)
        for fd in close:
            os.close(fd)
        code = body()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # the child's own failure: its exit status says so
        code = 70
    finally:
        os._exit(code)


def cli_child(
    home: Path, argv: list[str], extra_env: dict[str, str] | None = None, **streams: Any
) -> int:
    """`webmodels ARGV` in a forked child whose store is `home`; its pid."""

    def body() -> int:
        os.environ.clear()
        os.environ.update(env_for(home, extra_env))
        from webmodels.cli.main import main

        return main(argv)

    return fork_child(body, **streams)


def kill_at(pid: int, deadline: float) -> int:
    """Wait for `pid` until `deadline` (time.monotonic), SIGKILL it if it still runs;
    its exit status (`KILLED` when the kill ended it)."""
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


class HostPipe:
    """A forked `webmodels serve --trusted-stdio` spoken to over its pipes, as a
    browser's extension does; every read waits at most until the kill's deadline."""

    def __init__(
        self, home: Path, deadline: float, extra_env: dict[str, str] | None = None
    ) -> None:
        child_in, self._to_host = os.pipe()
        self._from_host, child_out = os.pipe()
        self.pid = cli_child(
            home,
            ["serve", "--trusted-stdio"],
            extra_env,
            stdin=child_in,
            stdout=child_out,
            close=(self._to_host, self._from_host),
        )
        os.close(child_in)
        os.close(child_out)
        self.deadline = deadline
        self._buffer = b""
        self._next_id = 0

    def call(self, method: str, **params: object) -> dict:  # type: ignore[type-arg]
        """The reply to one request; TimeoutError past the deadline, EOFError when the
        host is gone."""
        self._next_id += 1
        body = json.dumps({"id": self._next_id, "method": method, "params": params}).encode()
        os.write(self._to_host, HEADER.pack(len(body)) + body)
        while True:
            reply = json.loads(self._read(HEADER.unpack(self._read(4))[0]))
            if reply.get("id") == self._next_id and "event" not in reply:
                return dict(reply)

    def _read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            left = self.deadline - time.monotonic()
            ready, _, _ = select.select([self._from_host], [], [], max(0.0, left))
            if not ready:
                raise TimeoutError("the kill's moment came")
            piece = os.read(self._from_host, 1 << 16)
            if not piece:
                raise EOFError("host gone")
            self._buffer += piece
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def finish(self) -> int:
        """SIGKILL the host if it still runs at its deadline (a host runs until its
        input ends: closing it first lets one that is done exit); its exit status."""
        os.close(self._to_host)
        status = kill_at(self.pid, self.deadline)
        os.close(self._from_host)
        return status


def cos_write(host: HostPipe, data: bytes, sent: list[int]) -> bool:
    """Begin, chunks, commit; True when the commit was answered ok (`sent` counts the
    chunk bytes that reached the host's pipe)."""
    digest = hashlib.sha256(data).hexdigest()
    begin = host.call("cos.write.begin", sha256=digest, size=len(data))
    upload_id = begin["result"]["upload_id"]
    for offset in range(0, len(data), PIECE):
        piece = data[offset : offset + PIECE]
        encoded = base64.b64encode(piece).decode()
        host.call("cos.write.chunk", upload_id=upload_id, offset=offset, data=encoded)
        sent[0] += len(piece)
    return bool(host.call("cos.write.commit", upload_id=upload_id).get("ok"))
