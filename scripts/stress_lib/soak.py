"""The browser soak (`scripts/stress --only soak`): real headless Chromium with the real
extension and the real host it starts, four tabs on three sites (stress_lib/soak_tabs.py:
``a`` twice, ``b`` and ``c``) doing their rounds at once: COS writes of random sizes (in
one or several ``write()`` calls), loads by URL and integrity from a loopback model
server, reads by ``arrayBuffer()`` and ``stream()``, host sessions of a tiny ONNX model;
cancels (a download aborted part way, a ``stream()`` read cancelled, a session left open
in a tab that is then closed) and a tab closed in the middle of a load and a COS write
and opened again; deletes and clear-site through the popup's management calls (a
trusted host on the same store), and every few rounds a SIGKILL of the browser's native
host.

After every round: every answer right (bytes, sizes, session outputs), no site sees a
model another site obtained (a tab of the same site does), no download job still
active and no temp file left in the store's tmp/ (both waited for: a closed tab's work
is stopped by the host after the tab is gone), the host's RSS, threads and open file
descriptors and the session worker's RSS (``/proc``). At the end, with the browser
closed, the store's full check (stress_lib/checks.py). It owns nothing the host imports.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stress_lib.checks import Verdict, check_store
from stress_lib.soak_leak import planted_env
from stress_lib.soak_proc import fds_of, host_pids, rss_of, threads_of, worker_pids
from stress_lib.soak_report import Soak, print_progress
from stress_lib.soak_tabs import TABS, TabPlan, Tabs, add_slow, plan_tab

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from e2e.conftest import CHROMIUM, install_host, launch_chromium  # noqa: E402
from e2e.sites import EXTENSION, serve_pages, site_args  # noqa: E402
from support.host import HostProcess  # noqa: E402
from support.httpserver import ModelServer  # noqa: E402

RSS_LIMIT = 1 << 30  # a host above 1 GiB of resident memory fails the soak
# More open descriptors than this at a host's round than at its first fails the soak: a
# host's count is flat, so one leaked per round of a host's life is caught.
FD_GROWTH_LIMIT = 4
# A session worker whose resident memory grew by more than this from its first round
# (4 sessions in) fails the soak. A worker's RSS moves by a few MiB over its life (its
# host's: 3 rounds in the short run, 10 in the long), so a worker that keeps 2 MiB of
# every session is caught in the short run (8 sessions: 16 MiB) and 0.4 MiB of every
# session in the long one (36 sessions); docs/reliability.md has the figures.
WORKER_GROWTH_LIMIT = 12 << 20
# More threads at a host's round (after its drain) than at its first round, beyond this
# and one for each transfer still running, fails the soak: a host's count after a drain
# moves by a few (idle pool threads started on demand: 11 to 17 over the 30-minute run,
# with cancelled transfers then still running), so a thread leaked per request (dozens
# a round) is caught in the round after the first.
THREAD_GROWTH_LIMIT = 8
TEMP_KINDS = ("partial", "aside", "publishing")
DRAIN_S = 90.0  # how long a round's clean-up may take under load (polled, not slept)


@dataclass
class Sites(Tabs):
    """The tabs, the store and the management host (the popup's calls)."""

    store: Path = Path()
    manager: HostProcess | None = None

    def manage(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self.manager is not None
        reply: dict[str, Any] = self.manager.call(method, params or {})
        return reply


def check_tab(plan: TabPlan, got: dict[str, Any], soak: Soak) -> None:
    """The answers of one tab's round."""
    tab, ops = plan.tab, soak.operations
    ops.update(["cos write", "cos read", "load", "read arrayBuffer", "read stream", "session"])
    if "error" in got:
        soak.errors.append(f"tab {tab}: round failed: {str(got)[:300]}")
        return
    if got.get("cosStore") != {"stored": True}:
        soak.errors.append(f"tab {tab}: COS write of {plan.cos_size} bytes: {got.get('cosStore')}")
    if got.get("cosGet") != {"sha256": plan.cos["hex"], "size": plan.cos_size, "isFile": True}:
        soak.errors.append(f"tab {tab}: COS read: {got.get('cosGet')}")
    loaded = got.get("load") or {}
    if loaded.get("sha256") != plan.digest or loaded.get("streamed") != plan.digest:
        soak.errors.append(f"tab {tab}: load: {str(loaded)[:300]}")
    ran = got.get("session") or {}
    if ran.get("dims") != [2, 4] or not np.allclose(ran.get("data", []), plan.expected_output()):
        soak.errors.append(f"tab {tab}: session: {str(ran)[:300]}")
    if plan.cancel == "download":
        ops["cancel download"] += 1
        if (got.get("cancelDownload") or {}).get("error", {}).get("name") != "AbortError":
            soak.errors.append(f"tab {tab}: aborted load: {got.get('cancelDownload')}")
    if plan.cancel == "stream":
        ops["cancel stream"] += 1
        cancelled = got.get("cancelStream") or {}
        if cancelled.get("again") != plan.digest or not cancelled.get("first"):
            soak.errors.append(f"tab {tab}: cancelled stream(): {cancelled}")


def check_privacy(sites: Sites, plans: list[TabPlan], soak: Soak) -> None:
    """A model one tab loaded: its site's other tab sees it, the other sites do not."""
    for plan in plans:
        for other in TABS:
            if other == plan.tab:
                continue
            want = "available" if other[0] == plan.tab[0] else "unavailable"
            seen = sites.call(other, "availability", {"sha256": plan.digest})
            soak.operations["availability"] += 1
            if seen != {"availability": want}:
                soak.errors.append(f"tab {other} asked for {plan.tab}'s model: {seen}, not {want}")


def delete_round(sites: Sites, digest: str, soak: Soak) -> None:
    """The popup deletes a COS file; the page no longer finds it."""
    reply = sites.manage("manage.delete", {"sha256": digest, "force": True})
    soak.operations["delete"] += 1
    if not reply.get("ok"):
        soak.errors.append(f"manage.delete {digest[:12]}: {reply}")
    gone = sites.call("a1", "cosGet", digest)
    if gone.get("error", {}).get("name") != "NotFoundError":
        soak.errors.append(f"deleted {digest[:12]} still read: {gone}")


def clear_round(sites: Sites, plan: TabPlan, soak: Soak) -> None:
    """The popup clears a site; its model is no longer available to its tabs."""
    reply = sites.manage("manage.clear_site", {"top_site": sites.origin(plan.tab)})
    soak.operations["clear site"] += 1
    if not reply.get("ok"):
        soak.errors.append(f"manage.clear_site {plan.tab[0]}: {reply}")
    for tab in (t for t in TABS if t[0] == plan.tab[0]):
        seen = sites.call(tab, "availability", {"sha256": plan.digest})
        if seen != {"availability": "unavailable"}:
            soak.errors.append(f"tab {tab} still sees its cleared model {plan.digest[:12]}: {seen}")


def kill_host(sites: Sites, soak: Soak, *, settle: bool) -> None:
    """SIGKILL the browser's hosts and wait until they are gone; with `settle`, until
    a new one answers."""
    pids = host_pids(sites.store)
    held = open_files(pids)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    soak.killed_temps |= {name for name in held if "/tmp/" in name and name.endswith(".partial")}
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
        probe = sites.call("a1", "availability", {"sha256": os.urandom(32).hex()})
        if probe == {"availability": "unavailable"}:
            return
        message = probe.get("error", {}).get("message", "")
        if not message.startswith("the webmodels host exited"):
            soak.errors.append(f"first call after a kill: {probe}")
            return
        soak.failed_at_kill += 1
    soak.errors.append("no new host answered after a kill")


def open_files(pids: list[int]) -> set[str]:
    """The files `pids` hold open."""
    held: set[str] = set()
    for pid in pids:
        try:
            held |= {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
        except OSError:
            continue
    return held


def leftovers(sites: Sites, killed: set[str]) -> tuple[list[str], set[str]]:
    """Download jobs still active and temp files in the store's tmp/ but the partials
    of killed transfers (a cancelled transfer stops at once and removes its partial, so
    a file a host still holds open is left over too); and those a host holds open."""
    jobs = sites.manage("manage.jobs").get("result", {}).get("jobs")
    if jobs is None:
        return ["no job list"], set()
    left = [f"job {job.get('id')} active" for job in jobs if job.get("state") == "active"]
    held = open_files(host_pids(sites.store))
    temps = {str(p) for kind in TEMP_KINDS for p in sites.store.glob(f"**/tmp/*.{kind}")}
    return left + [Path(p).name for p in temps - killed], temps & held


def drain(sites: Sites, plans: list[TabPlan], soak: Soak) -> int:
    """Wait until no download job is active and no temp file is left (a closed tab's or
    a cancelled load's transfer is stopped by the host after the page is gone), for at
    most DRAIN_S; then no cancelled model is in the store for its site. The number of
    transfers still running (0 unless the drain failed)."""
    deadline = time.monotonic() + DRAIN_S
    while (found := leftovers(sites, soak.killed_temps))[0] and time.monotonic() < deadline:
        time.sleep(0.1)
    left, running = found
    if left:
        soak.errors.append(f"round {soak.rounds}: left after {DRAIN_S:.0f} s: {left[:5]}")
    now = time.monotonic()
    soak.running = {name: soak.running.get(name, now) for name in running}
    stuck = [Path(name).name for name, since in soak.running.items() if now - since > DRAIN_S]
    if stuck:
        soak.errors.append(f"round {soak.rounds}: transfers running {DRAIN_S:.0f} s on: {stuck}")
    for plan in plans:
        if plan.slow_digest:
            seen = sites.call(plan.tab, "availability", {"sha256": plan.slow_digest})
            if seen != {"availability": "unavailable"}:
                soak.errors.append(f"tab {plan.tab}: a cancelled model is {seen}")
    return len(running)


def check_processes(sites: Sites, soak: Soak, running: int) -> None:
    """The host's memory, threads and descriptors (3 more for each of the `running`
    transfers: its socket and its temp file, open twice); its session workers' memory."""
    pids = host_pids(sites.store)
    if len(pids) != 1:
        soak.errors.append(f"round {soak.rounds}: {len(pids)} hosts running")
    for pid in pids:
        try:
            rss, fds, threads = rss_of(pid), fds_of(pid), threads_of(pid)
            workers = [(w, rss_of(w)) for w in worker_pids(pid)]
        except OSError:
            continue
        # soak.threads and soak.fds grow together: a host's first count is at its first fds
        began = next(
            (t for (p, _), t in zip(soak.fds, soak.threads, strict=True) if p == pid), threads
        )
        if threads - began > THREAD_GROWTH_LIMIT + running:
            soak.errors.append(f"round {soak.rounds}: host threads grew from {began} to {threads}")
        soak.threads.append(threads)
        soak.peak_rss = max(soak.peak_rss, rss)
        first = next((n for p, n in soak.fds if p == pid), fds)
        if fds - first > FD_GROWTH_LIMIT + 3 * running:
            soak.errors.append(f"round {soak.rounds}: host fds grew from {first} to {fds}")
        soak.fds.append((pid, fds))
        for worker, size in workers:
            start = next((n for p, n in soak.workers if p == worker), size)
            if size - start > WORKER_GROWTH_LIMIT:
                soak.errors.append(
                    f"round {soak.rounds}: worker RSS grew from {start >> 20} to {size >> 20} MiB"
                )
            soak.workers.append((worker, size))
    if soak.peak_rss > RSS_LIMIT:
        soak.errors.append(f"round {soak.rounds}: host RSS {soak.peak_rss >> 20} MiB")


def wait_for_bytes(sites: Sites, path: str) -> None:
    """Until the model server has sent some of `path` (a load is under way)."""
    deadline = time.monotonic() + DRAIN_S
    while sites.models.bytes_sent(path) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)


def tabs_round(sites: Sites, seq: int, rng: random.Random, soak: Soak) -> list[TabPlan]:
    """The four tabs' rounds at once; one tab cancels, one keeps a session open and is
    closed after it, one (every other round) is closed in the middle of a load. The
    checked plans (those whose tab was not closed mid-round)."""
    plans = [plan_tab(sites.models, tab, seq, rng) for tab in TABS]
    canceller, keeper, closed = plans[seq % 4], plans[(seq + 1) % 4], plans[(seq + 2) % 4]
    canceller.cancel = "download" if seq % 2 == 0 else "stream"
    if canceller.cancel == "download":
        add_slow(sites.models, canceller, seq, rng)
    keeper.keep = seq % 3 == 0
    closed.closed = seq % 2 == 1
    if closed.closed:
        add_slow(sites.models, closed, seq, rng)
    for plan in plans:
        sites.start(plan)
    if closed.closed:
        wait_for_bytes(sites, closed.slow_path)
        sites.close(closed.tab)
        soak.operations["tab closed mid-load"] += 1
    if canceller.cancel == "download":
        wait_for_bytes(sites, canceller.slow_path)
        sites.abort(canceller.tab)
    checked = [plan for plan in plans if not plan.closed]
    for plan in checked:
        check_tab(plan, sites.result(plan.tab), soak)
    if keeper.keep:
        sites.close(keeper.tab)
        soak.operations["tab closed with a session"] += 1
    return checked


def one_round(
    sites: Sites, seq: int, rng: random.Random, kill_every: int, soak: Soak, *, last: bool
) -> None:
    plans = tabs_round(sites, seq, rng, soak)
    check_privacy(sites, plans, soak)
    first = next(plan for plan in plans if plan.tab[0] == "a")
    if seq % 3 == 2:
        delete_round(sites, first.cos["hex"], soak)
    if seq % 4 == 3:
        clear_round(sites, plans[seq % len(plans)], soak)
    soak.rounds += 1
    check_processes(sites, soak, drain(sites, plans, soak))
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
                env=planted_env(root),
            )
            sites = Sites(context, pages.port, models, store=store, manager=HostProcess(store))
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
                if sites.manager is not None:
                    sites.manager.close()
        verdict = Verdict()
        check_store(store, verdict)
        killed = {f"temp file survives the next start: {Path(n).name}" for n in soak.killed_temps}
        soak.errors += verdict.lost + [c for c in verdict.corrupted if c not in killed]
    soak.seconds = time.monotonic() - started
    return soak
