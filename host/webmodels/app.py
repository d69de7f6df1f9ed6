"""The composition root: builds the host's parts once and wires the handlers."""

from __future__ import annotations

from dataclasses import dataclass

from webmodels.config import Config
from webmodels.dispatch import Dispatcher
from webmodels.fetch.jobs import JobManager
from webmodels.runtime.probe import ProviderProbe
from webmodels.store import Store


@dataclass(slots=True)
class Host:
    config: Config
    store: Store
    probe: ProviderProbe
    jobs: JobManager

    def close(self) -> None:
        self.jobs.close()
        self.store.close()


def build_host(config: Config) -> Host:
    probe = ProviderProbe()
    probe.start()  # in the background; `hello` waits for it only if asked early
    store = Store.open(config)
    jobs = JobManager(store).start()  # takes over downloads a killed host left behind
    return Host(config=config, store=store, probe=probe, jobs=jobs)


def build_dispatcher(host: Host) -> Dispatcher:
    from webmodels.methods import hello, manage, models

    dispatcher = Dispatcher()
    for module in (hello, models, manage):
        module.register(dispatcher, host)
    return dispatcher
