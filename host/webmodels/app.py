"""The composition root: builds the host's parts once and wires the handlers."""

from __future__ import annotations

from dataclasses import dataclass

from webmodels.config import Config
from webmodels.dispatch import Dispatcher
from webmodels.runtime.probe import ProviderProbe
from webmodels.store import Store


@dataclass(slots=True)
class Host:
    config: Config
    store: Store
    probe: ProviderProbe

    def close(self) -> None:
        self.store.close()


def build_host(config: Config) -> Host:
    probe = ProviderProbe()
    probe.start()  # in the background; `hello` waits for it only if asked early
    return Host(config=config, store=Store.open(config), probe=probe)


def build_dispatcher(host: Host) -> Dispatcher:
    from webmodels.methods import hello, manage, models

    dispatcher = Dispatcher()
    for module in (hello, models, manage):
        module.register(dispatcher, host)
    return dispatcher
