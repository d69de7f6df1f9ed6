"""``hello``: who the host is and what it can do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from webmodels import PROTOCOL_VERSION, STORE_LAYOUT, __version__
from webmodels.dispatch import Call, Dispatcher
from webmodels.errors import ERROR_CODES

if TYPE_CHECKING:
    from webmodels.app import Host


def register(dispatcher: Dispatcher, host: Host) -> None:
    def hello(call: Call) -> Mapping[str, Any]:
        if call.context.trusted and "extension_origin" in call.params.raw:
            # The extension's service worker introduces itself (only it writes a
            # trusted context): the loopback server then serves its origin only.
            host.loopback.pin(call.params.string("extension_origin", max_length=200))
        # Never waits for the provider probe (≈0.7 s on a fresh store, issue 12): the
        # answer says what is known now and whether the probe is still running.
        probe = host.probe.result(0)
        return {
            "protocol_version": PROTOCOL_VERSION,
            "host_version": __version__,
            "store_layout": STORE_LAYOUT,
            "capabilities": dispatcher.methods(),
            "error_codes": sorted(ERROR_CODES),
            # Really usable execution providers (a probe session, not ORT's list);
            # empty while the probe has not finished.
            "providers": list(probe.usable) if probe is not None else [],
            "providers_pending": probe is None,
            "trusted": call.context.trusted,
        }

    dispatcher.add("hello", hello)
