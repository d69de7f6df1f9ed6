"""The browser soak (`scripts/stress --only soak`): real headless Chromium with the real
extension and the real host it starts, two sites (``http://a.localhost:PORT`` and
``http://b.localhost:PORT``) doing, round after round, COS writes of random sizes (in
one or several ``write()`` calls), loads by URL and integrity from a loopback model
server, reads by ``arrayBuffer()`` and ``stream()``, host sessions of a tiny ONNX model,
deletes and clear-site through the popup's management calls (a trusted host on the same
store), and every few rounds a SIGKILL of the browser's native host.

After every round: every answer right (bytes, sizes, session outputs), site B never
sees a model only A obtained (and A no longer sees what a clear-site removed), the
host's RSS and open file descriptors (``/proc/PID``) and no temp file left in the
store's tmp/. At the end, with the browser closed, the store's full check
(stress_lib/checks.py). It owns nothing the host imports.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stress_lib.checks import Verdict, check_store

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from e2e.conftest import CHROMIUM, install_host, launch_chromium  # noqa: E402
from e2e.sites import EXTENSION, serve_pages, site_args  # noqa: E402
from support.host import HostProcess  # noqa: E402
from support.httpserver import ModelServer  # noqa: E402
from support.models import tiny_model  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

API_TIMEOUT_MS = 60_000
RSS_LIMIT = 1 << 30  # a host above 1 GiB of resident memory fails the soak
# More open descriptors than this at a host's round than at its first fails the soak: a
# host's count is flat (10 in every round of a 5-minute run), so one leaked per round of
# a 10-round host life is caught.
FD_GROWTH_LIMIT = 4
TEMP_KINDS = ("partial", "aside", "publishing")

# One host session: load, create, run x = [[0..3], [4..7]], release (y = x + b).
SESSION_JS = """async (query) => {
  try {
    const model = await window.webmodels.load(query);
    const session = await model.createSession();
    const x = new Float32Array([0, 1, 2, 3, 4, 5, 6, 7]);
    const feeds = { [session.inputNames[0]]: { type: "float32", dims: [2, 4], data: x } };
    const out = await session.run(feeds);
    const y = out[session.outputNames[0]];
    await session.release();
    return { dims: Array.from(y.dims), data: Array.from(y.data) };
  } catch (error) {
    return { error: { name: error?.name, message: String(error?.message ?? error) } };
  }
}"""


@dataclass
class Soak:
    """What the soak did and saw; `errors` must stay empty."""

    rounds: int = 0
    operations: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    failed_at_kill: int = 0  # calls sent as a host died, failed cleanly ("host exited")
    errors: list[str] = field(default_factory=list)
    peak_rss: int = 0
    threads: list[int] = field(default_factory=list)  # the host's threads, per round
    fds: list[tuple[int, int]] = field(default_factory=list)  # (host pid, open fds) per round
    seconds: float = 0.0
    seed: int = 0

    @property
    def hosts(self) -> int:
        """Hosts the browser started (one, and one more after each kill)."""
        return len({pid for pid, _ in self.fds})

    def fd_first_last(self) -> tuple[int, int]:
        return (self.fds[0][1], self.fds[-1][1]) if self.fds else (0, 0)


@dataclass
class Sites:
    """The browser, its two site pages, the model server and the management host."""

    context: BrowserContext
    port: int
    store: Path
    models: ModelServer
    manager: HostProcess
    pages: dict[str, Page] = field(default_factory=dict)

    def origin(self, site: str) -> str:
        return f"http://{site}.localhost:{self.port}"

    def page(self, site: str) -> Page:
        if site not in self.pages:
            page = self.context.new_page()
            page.set_default_timeout(API_TIMEOUT_MS)
            page.goto(f"{self.origin(site)}/index.html")
            page.wait_for_function("() => window.webmodelsTest && window.webmodels")
            self.pages[site] = page
        return self.pages[site]

    def call(self, site: str, tool: str, *args: Any) -> Any:
        return self.page(site).evaluate(
            "([tool, args]) => window.webmodelsTest[tool](...args)", [tool, list(args)]
        )


def host_pids(store: Path) -> list[int]:
    """Native hosts the browser started for `store` (its path is on their command line)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and str(store).encode() in argv:
            pids.append(int(entry.name))
    return pids


def rss_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def fds_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def cos_round(sites: Sites, rng: random.Random, soak: Soak) -> str:
    """A COS write of a random size in 1 to 4 write() calls, read back by site a."""
    data = rng.randbytes(rng.randint(1, 384 * 1024))
    digest = hashlib.sha256(data).hexdigest()
    parts = rng.randint(1, 4)
    stored = sites.call("a", "cosStore", digest, base64.b64encode(data).decode(), parts)
    soak.operations["cos write"] += 1
    if stored != {"stored": True}:
        soak.errors.append(f"COS write of {len(data)} bytes in {parts}: {stored}")
    got = sites.call("a", "cosGet", digest)
    soak.operations["cos read"] += 1
    if got != {"sha256": digest, "size": len(data), "isFile": True}:
        soak.errors.append(f"COS read of {digest[:12]}: {got}")
    return digest


def load_round(sites: Sites, site: str, seq: int, rng: random.Random, soak: Soak) -> str:
    """A fresh model loaded by URL and integrity by `site`, read back both ways, run in
    a host session; the other site must not see it."""
    seed = rng.randint(1, 1 << 20)
    with tempfile.TemporaryDirectory() as folder:
        path = tiny_model(
            Path(folder) / "m.onnx", weight_bytes=rng.randint(1, 256) << 10, seed=seed
        )
        data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    url = sites.models.add(f"m{seq}.onnx", data)
    query = {"url": url, "integrity": "sha256-" + base64.b64encode(bytes.fromhex(digest)).decode()}
    loaded = sites.call(site, "load", query)
    soak.operations["load"] += 1
    soak.operations["read arrayBuffer"] += 1
    soak.operations["read stream"] += 1
    if loaded.get("sha256") != digest or loaded.get("streamed") != digest:
        soak.errors.append(f"load of m{seq} by {site}: {str(loaded)[:300]}")
    ran = sites.page(site).evaluate(SESSION_JS, query)
    soak.operations["session"] += 1
    expected = (np.arange(8, dtype=np.float32).reshape(2, 4) + np.arange(4) + seed).ravel()
    if ran.get("dims") != [2, 4] or not np.allclose(ran.get("data", []), expected):
        soak.errors.append(f"session of m{seq} by {site}: {str(ran)[:300]}")
    other = "b" if site == "a" else "a"
    seen = sites.call(other, "availability", {"sha256": digest})
    soak.operations["availability"] += 1
    if seen != {"availability": "unavailable"}:
        soak.errors.append(f"site {other} sees {site}'s model m{seq}: {seen}")
    return digest


def delete_round(sites: Sites, digest: str, soak: Soak) -> None:
    """The popup deletes a COS file; the page no longer finds it."""
    reply = sites.manager.call("manage.delete", {"sha256": digest, "force": True})
    soak.operations["delete"] += 1
    if not reply.get("ok"):
        soak.errors.append(f"manage.delete {digest[:12]}: {reply}")
    gone = sites.call("a", "cosGet", digest)
    if gone.get("error", {}).get("name") != "NotFoundError":
        soak.errors.append(f"deleted {digest[:12]} still read: {gone}")


def clear_round(sites: Sites, site: str, digest: str, soak: Soak) -> None:
    """The popup clears a site; its model is no longer available to it."""
    reply = sites.manager.call("manage.clear_site", {"top_site": sites.origin(site)})
    soak.operations["clear site"] += 1
    if not reply.get("ok"):
        soak.errors.append(f"manage.clear_site {site}: {reply}")
    seen = sites.call(site, "availability", {"sha256": digest})
    if seen != {"availability": "unavailable"}:
        soak.errors.append(f"site {site} still sees its cleared model {digest[:12]}: {seen}")


def kill_host(sites: Sites, soak: Soak, *, settle: bool) -> None:
    """SIGKILL the browser's hosts and wait until they are gone; with `settle`, until
    a new one answers."""
    pids = host_pids(sites.store)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    soak.kills += len(pids)
    if settle:
        settle_after_kill(sites, soak)


def settle_after_kill(sites: Sites, soak: Soak) -> None:
    """Probe until a call is answered by a new host. A call that the extension sent
    before it saw its port close fails cleanly with "the webmodels host exited" (as a
    page's calls in flight at a crash do: counted, not an error); anything else is."""
    for _ in range(20):
        probe = sites.call("a", "availability", {"sha256": os.urandom(32).hex()})
        if probe == {"availability": "unavailable"}:
            return
        message = probe.get("error", {}).get("message", "")
        if not message.startswith("the webmodels host exited"):
            soak.errors.append(f"first call after a kill: {probe}")
            return
        soak.failed_at_kill += 1
    soak.errors.append("no new host answered after a kill")


def check_round(sites: Sites, soak: Soak) -> None:
    """The host's memory, threads and descriptors; with nothing in flight, no download
    job still active (the popup's job list, newest first) and no temp file left."""
    store = sites.store
    pids = host_pids(store)
    if len(pids) != 1:
        soak.errors.append(f"round {soak.rounds}: {len(pids)} hosts running")
    for pid in pids:
        try:
            rss, fds, threads = rss_of(pid), fds_of(pid), threads_of(pid)
        except OSError:
            continue
        soak.threads.append(threads)
        soak.peak_rss = max(soak.peak_rss, rss)
        first = next((n for p, n in soak.fds if p == pid), fds)
        if fds - first > FD_GROWTH_LIMIT:
            soak.errors.append(f"round {soak.rounds}: host fds grew from {first} to {fds}")
        soak.fds.append((pid, fds))
    if soak.peak_rss > RSS_LIMIT:
        soak.errors.append(f"round {soak.rounds}: host RSS {soak.peak_rss >> 20} MiB")
    temps = [p.name for kind in TEMP_KINDS for p in (store / "tmp").glob(f"*.{kind}")]
    if temps:
        soak.errors.append(f"round {soak.rounds}: temp files left: {temps[:5]}")
    jobs = sites.manager.call("manage.jobs").get("result", {}).get("jobs")
    stuck = [job for job in jobs or [] if job.get("state") == "active"]
    if jobs is None or stuck:
        soak.errors.append(f"round {soak.rounds}: download jobs still active: {stuck[:2]}")


def one_round(
    sites: Sites, seq: int, rng: random.Random, kill_every: int, soak: Soak, *, last: bool
) -> None:
    site = "ab"[seq % 2]
    written = cos_round(sites, rng, soak)
    loaded = load_round(sites, site, seq, rng, soak)
    if seq % 3 == 2:
        delete_round(sites, written, soak)
    if seq % 4 == 3:
        clear_round(sites, site, loaded, soak)
    soak.rounds += 1
    check_round(sites, soak)
    if (seq + 1) % kill_every == 0:
        kill_host(sites, soak, settle=not last)  # after the last: the store's check


def run_soak(*, rounds: int | None, minutes: float | None, kill_every: int, seed: int) -> Soak:
    """`rounds` rounds (or as many as fit in `minutes`) in a fresh profile and store."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        raise SystemExit(f"soak: {CHROMIUM} is missing")
    soak, rng = Soak(seed=seed), random.Random(seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="soak-") as folder, sync_playwright() as driver:
        root = Path(folder)
        store, profile, config = root / "store", root / "profile", root / "xdg"
        config.mkdir()
        (root / "home").mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
        env.pop("CHROME_CONFIG_HOME", None)
        env |= {"HOME": str(root / "home"), "XDG_CONFIG_HOME": str(config)}
        install_host(store, profile, env)
        with ModelServer() as pages, ModelServer() as models:
            serve_pages(pages)
            context = launch_chromium(
                driver,
                user_data_dir=profile,
                config_home=config,
                extension_dir=EXTENSION,
                extra_args=site_args(pages.port),
            )
            manager = HostProcess(store)
            sites = Sites(context, pages.port, store, models, manager)
            try:
                deadline = started + minutes * 60 if minutes else None
                seq, shown = 0, time.monotonic()
                while (rounds is None or seq < rounds) and (
                    deadline is None or time.monotonic() < deadline
                ):
                    last = rounds is not None and seq + 1 == rounds
                    try:
                        one_round(sites, seq, rng, kill_every, soak, last=last)
                    except PlaywrightError as error:  # a call that never settled, a page gone
                        soak.errors.append(f"round {seq}: {str(error)[:300]}")
                        break
                    seq += 1
                    if minutes and time.monotonic() - shown >= 60:
                        print_progress(soak, started)
                        shown = time.monotonic()
            finally:
                context.close()
                manager.close()
        verdict = Verdict()
        check_store(store, verdict)
        soak.errors += verdict.lost + verdict.corrupted
    soak.seconds = time.monotonic() - started
    return soak


def print_progress(soak: Soak, started: float) -> None:
    first, last = soak.fd_first_last()
    print(
        f"  soak: {soak.rounds} rounds, {time.monotonic() - started:.0f} s, "
        f"peak RSS {soak.peak_rss >> 20} MiB, fds {first} -> {last}, "
        f"threads {max(soak.threads, default=0)} at most, "
        f"{len(soak.errors)} errors",
        flush=True,
    )


def report(soak: Soak, size: str) -> int:
    """Print the figures; the number of errors (0 for a good run)."""
    first, last = soak.fd_first_last()
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(soak.operations.items()))
    print(
        f"soak: {soak.rounds} rounds, {sum(soak.operations.values())} operations ({kinds}), "
        f"{soak.kills} host kills, {soak.hosts} hosts started, {soak.failed_at_kill} calls "
        f"failed cleanly at a kill, {len(soak.errors)} errors, "
        f"peak host RSS {soak.peak_rss / (1 << 20):.1f} MiB, host fds first {first} last {last} "
        f"max {max((n for _, n in soak.fds), default=0)}, host threads first "
        f"{soak.threads[0] if soak.threads else 0} last {soak.threads[-1] if soak.threads else 0} "
        f"max {max(soak.threads, default=0)}, {soak.seconds:.1f} s ({size}, seed {soak.seed})"
    )
    for error in soak.errors[:10]:
        print(f"    {error}")
    return len(soak.errors)
