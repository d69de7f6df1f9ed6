"""A thread leak planted in the soak's hosts on request, to show that the soak's thread
bound (stress_lib/soak.py `THREAD_GROWTH_LIMIT`) catches one: with
``SOAK_PLANT_THREAD_LEAK=1`` in the environment of `scripts/stress --only soak`, every
request a host the browser starts dispatches also starts a thread that never ends
(through a ``sitecustomize`` module on the hosts' ``PYTHONPATH``); the run must fail.
Nothing of it runs otherwise; it owns nothing the host imports."""

from __future__ import annotations

import os
from pathlib import Path

ENV_PLANT = "SOAK_PLANT_THREAD_LEAK"
_SITECUSTOMIZE = """
import threading

try:
    from webmodels import dispatch as _dispatch
except ImportError:  # not a host (the browser's other Python helpers)
    _dispatch = None
if _dispatch is not None:
    _real = _dispatch.Dispatcher.dispatch
    _never = threading.Event()

    def _leaking(self, request, context, emit, respond):
        threading.Thread(target=_never.wait, daemon=True).start()
        return _real(self, request, context, emit, respond)

    _dispatch.Dispatcher.dispatch = _leaking
"""


def planted_env(folder: Path) -> dict[str, str]:
    """The environment the browser (and so its hosts) gets on top of this one's: the
    planted leak's ``PYTHONPATH`` when ``SOAK_PLANT_THREAD_LEAK=1``, else nothing."""
    if os.environ.get(ENV_PLANT) != "1":
        return {}
    plant = folder / "planted-leak"
    plant.mkdir()
    (plant / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    paths = [str(plant), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {"PYTHONPATH": os.pathsep.join(paths)}
