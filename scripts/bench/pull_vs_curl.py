"""Download throughput: `webmodels pull` against curl, same file, same local server,
side by side in one run (alternating rounds), printing the ratio.

`webmodels pull` streams into the store's temp file while hashing (SHA-256), fsyncs,
verifies and publishes; curl only writes the file. Two figures per round:

* command: the whole `webmodels pull` process (Python start-up included) against the
  whole curl process;
* transfer: pull's transfer phase alone (first request to verified blob), timed in
  process with the same library, against curl.

Usage: .venv/bin/python scripts/bench/pull_vs_curl.py [--size-mb 512] [--rounds 3]
       [--rate-mbps 1000]   (a throttled server: a fast real link instead of loopback)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.host import webmodels_env  # noqa: E402
from support.httpserver import Fault, ModelServer  # noqa: E402
from webmodels.config import Flags, load_config  # noqa: E402
from webmodels.digest import Digest  # noqa: E402
from webmodels.fetch.jobs import JobManager  # noqa: E402
from webmodels.fetch.records import DownloadRequest  # noqa: E402
from webmodels.store import Store  # noqa: E402


def make_file(path: Path, size: int) -> str:
    hasher = hashlib.sha256()
    block = os.urandom(1 << 20)
    with path.open("wb") as fh:
        for i in range(size >> 20):
            chunk = block[i % 7 :] + block[: i % 7]  # not all blocks equal
            fh.write(chunk)
            hasher.update(chunk)
    return hasher.hexdigest()


def time_curl(url: str, out: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["curl", "-s", "-f", "-o", str(out), url], check=True)
    elapsed = time.perf_counter() - started
    out.unlink()
    return elapsed


def time_pull_command(url: str, digest: str, home: Path) -> float:
    shutil.rmtree(home, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "webmodels", "pull", url, "--sha256", digest],
        env=webmodels_env(home),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def time_pull_transfer(url: str, digest: str, home: Path) -> float:
    shutil.rmtree(home, ignore_errors=True)
    config = load_config(Flags(home=home), env={"WEBMODELS_CONFIG": str(home / "none.toml")})
    with Store.open(config) as store:
        manager = JobManager(store).start()
        try:
            started = time.perf_counter()
            request = DownloadRequest(digest=Digest(digest), urls=(url,), waiter="bench")
            _, future = manager.request(request)
            future.result(timeout=600)
            return time.perf_counter() - started
        finally:
            manager.close()


def serve_in_subprocess(source: Path, *, rate: int) -> subprocess.Popen[str]:
    """The model server in its own process: in ours it would share the GIL with the
    client being measured, while curl gets a process to itself."""
    return subprocess.Popen(
        [sys.executable, __file__, "--serve", str(source), "--rate", str(rate)],
        stdout=subprocess.PIPE,
        text=True,
    )


def serve(source: Path, rate: int) -> int:
    with ModelServer() as server:
        url = server.add_file("/model.bin", source)
        if rate:
            server.fault("/model.bin", Fault(kind="slow", rate=rate, times=None))
        print(url, flush=True)
        signal.sigwait({signal.SIGTERM})
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--rate-mbps", type=int, default=0, help="throttle the server (0: loopback speed)"
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        return serve(args.serve, args.rate)
    if shutil.which("curl") is None:
        print("curl is not installed (apt-get install curl)", file=sys.stderr)
        return 2
    size = args.size_mb << 20
    with tempfile.TemporaryDirectory(prefix="webmodels-bench-") as tmp:
        work = Path(tmp)
        source = work / "model.bin"
        digest = make_file(source, size)
        server = serve_in_subprocess(source, rate=args.rate_mbps * 1_000_000 // 8)
        try:
            url = server.stdout.readline().strip()  # type: ignore[union-attr]
            curl, command, transfer = [], [], []
            for _ in range(args.rounds):  # alternate, so drift hits both alike
                curl.append(time_curl(url, work / "curl.out"))
                command.append(time_pull_command(url, digest, work / "home-cmd"))
                transfer.append(time_pull_transfer(url, digest, work / "home-lib"))
        finally:
            server.terminate()
            server.wait()
    mb = size / 1e6
    c, p, t = (statistics.median(x) for x in (curl, command, transfer))
    speed = f"server throttled to {args.rate_mbps} Mbit/s" if args.rate_mbps else "loopback"
    print(f"file: {args.size_mb} MiB, {args.rounds} rounds, {speed}, medians")
    print(f"curl                      {c:6.3f} s  {mb / c:7.1f} MB/s")
    print(f"webmodels pull (command)  {p:6.3f} s  {mb / p:7.1f} MB/s  ratio {c / p:4.2f}x curl")
    print(f"webmodels pull (transfer) {t:6.3f} s  {mb / t:7.1f} MB/s  ratio {c / t:4.2f}x curl")
    print("goal: transfer ratio >= 0.90x (SHA-256 on, fsync, verify, publish)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
