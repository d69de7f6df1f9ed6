"""The composition root: builds the host's parts once and wires the handlers."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from webmodels.catalogs.deployed import install_deployed, parse_deployed
from webmodels.commons.gate import CommonsGate, ProbeBudget
from webmodels.commons.trust import Trust
from webmodels.config import Config
from webmodels.dispatch import Dispatcher
from webmodels.fetch.jobs import JobManager
from webmodels.fetch.records import JobOptions
from webmodels.loopback import LoopbackServer, allowed_origins
from webmodels.naming.sources import NameSources
from webmodels.permissions import PROVIDERS_FILE, make_private_dir, private_opener
from webmodels.representations.deriver import Deriver
from webmodels.runtime.outputs import OutputStore
from webmodels.runtime.probe import ProbeResult, ProviderProbe, run_probe_subprocess
from webmodels.runtime.sessions import SessionManager
from webmodels.runtime.settings import SessionSettings
from webmodels.store import Store
from webmodels.store.convert import Converter, delay_from_env
from webmodels.uploads import Uploads


@dataclass(slots=True)
class Host:
    config: Config
    store: Store
    probe: ProviderProbe
    jobs: JobManager
    uploads: Uploads
    sessions: SessionManager
    commons: CommonsGate
    names: NameSources
    loopback: LoopbackServer
    outputs: OutputStore
    representations: Deriver
    converter: Converter  # whole files to segments at idle (switch on only)

    def close(self) -> None:
        self.converter.close()
        self.loopback.close()
        self.representations.close()
        self.sessions.close()  # the runtime workers end with the host
        self.uploads.close()
        self.jobs.close()
        self.store.close()


PROBE_CACHE_S = 24 * 3600


def build_host(config: Config, *, caller: str | None = None) -> Host:
    """`caller`: the browser's argv naming the extension that launched the host."""
    probe = ProviderProbe(runner=functools.partial(cached_probe, config.home / PROVIDERS_FILE))
    probe.start()  # in the background; `hello` waits for it only if asked early
    settings = SessionSettings.from_config(config.extra)
    store = Store.open(config)
    install_deployed(store.index, parse_deployed(config.extra.get("catalogs")))
    commons = build_commons(config, store)
    sessions = SessionManager(store, probe, settings, log_path=config.log_dir / "worker.log")
    sessions.is_common = commons.is_common  # common models share one compile cache
    sessions.start()  # before the jobs: a download they resume is compiled when it lands
    jobs = JobManager(
        store,
        JobOptions(
            total_quota=config.quota_total_bytes,
            local_network_origins=config.local_network_origins,
            mirrors=config.mirrors,
        ),
        # The last file of a model pulled in the background: its manifest is saved.
        on_done=functools.partial(_settle_sets, store),
    ).start()  # takes over downloads a killed host left behind
    return Host(
        config=config,
        store=store,
        probe=probe,
        jobs=jobs,
        uploads=Uploads(store.files),
        sessions=sessions,
        commons=commons,
        names=NameSources(store),
        loopback=LoopbackServer(allowed_origins(caller)),
        outputs=OutputStore(),
        representations=Deriver(
            store,
            settings,
            is_common=commons.is_common,  # a common model's forms are shared, like its cache
            options=sessions.runtime.options,
        ),
        converter=Converter(store, delay_s=delay_from_env()).start(),
    )


def build_commons(config: Config, store: Store) -> CommonsGate:
    budget = ProbeBudget(config.probe_budget, config.probe_window_hours * 3600)
    gate = CommonsGate(
        store,
        Trust.from_config(config.commons_keys),
        budget,
        default_mode=config.privacy_mode,
        managed=config.policy,
    )
    gate.install_shipped()  # a newer version of webmodels brings a newer list
    gate.install_files(config.commons_lists)  # and an administrator's lists (docs/fleet.md)
    gate.prune()  # expired probe charges of every site (PRIVACY.md, hole 14)
    return gate


def build_dispatcher(host: Host) -> Dispatcher:
    from webmodels.methods import cos, hello, manage, models, sessions

    dispatcher = Dispatcher()
    for module in (hello, models, cos, manage, sessions):
        module.register(dispatcher, host)
    return dispatcher


def cached_probe(path: Path, timeout_s: float) -> ProbeResult:
    """The provider probe costs a Python start and an ORT import (~0.3-1 s of CPU);
    browsers start a host per connection, so a result is reused for a day, as long as
    it came from this interpreter and this ONNX Runtime. `webmodels doctor` always
    probes afresh."""
    key = {"python": sys.executable, "ort": _ort_version()}
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached["key"] == key and time.time() - cached["at"] < PROBE_CACHE_S:
            return ProbeResult.from_json(cached["result"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    result = run_probe_subprocess(timeout_s)
    if result.error is None:
        with contextlib.suppress(OSError):
            make_private_dir(path.parent, own=path.parent)
            temp = path.with_suffix(".new")
            with open(temp, "w", encoding="utf-8", opener=private_opener) as fh:
                json.dump({"key": key, "at": time.time(), "result": result.to_json()}, fh)
            os.replace(temp, path)
    return result


def _ort_version() -> str | None:
    import importlib.metadata  # only here: the host starts without it

    try:
        return importlib.metadata.version("onnxruntime-gpu")
    except importlib.metadata.PackageNotFoundError:
        try:
            return importlib.metadata.version("onnxruntime")
        except importlib.metadata.PackageNotFoundError:
            return None


def _settle_sets(store: Store) -> None:
    """Imported when a download ends, not at start (the host starts for every page)."""
    from webmodels.manifests.pending import settle_pending

    settle_pending(store)
