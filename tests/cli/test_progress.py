"""`webmodels pull` on a terminal shows the total, the rate and the time left (a real
pseudo-terminal on stderr; the file comes slowly from a local HTTP server)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from support.host import webmodels_env
from support.httpserver import Fault, ModelServer


def read_until_exit(proc: subprocess.Popen[bytes], fd: int) -> bytes:
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the terminal's other end closed
                break
        elif proc.poll() is not None:
            break
    return seen


def test_a_pull_on_a_terminal_shows_total_rate_and_time_left(
    home: Path, model_server: ModelServer
) -> None:
    started = time.monotonic()
    data = os.urandom(3 << 20)
    url = model_server.add("/m.bin", data)
    model_server.fault("/m.bin", Fault(kind="slow", rate=1 << 20))  # about 3 s
    master, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 140, 0, 0))
    sha = hashlib.sha256(data).hexdigest()
    proc = subprocess.Popen(
        [sys.executable, "-m", "webmodels", "pull", url, "--sha256", sha],
        env=webmodels_env(home, TERM="xterm", COLUMNS="140"),
        stdout=subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)
    try:
        shown = read_until_exit(proc, master).decode(errors="replace")
    finally:
        os.close(master)
    assert proc.wait() == 0
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)  # without terminal controls
    assert re.search(r"\d\.\d/3\.1 MB", plain), plain  # done of the total (3 MiB)
    assert re.search(r"\d+(\.\d+)? (kB|MB)/s", plain), plain  # the rate
    assert re.search(r"\b0:00:0\d\b", plain), plain  # the time left
    print(f"wall time {time.monotonic() - started:.1f} s")
