"""Registering the native-messaging host with browsers (`webmodels install`).

Layout: `locations` (where each browser looks), `documents` (manifest and
launcher bytes), `receipt` (what install wrote), `plans` (pure planning),
`execute` (the only writer) and `check` (for `webmodels doctor`).

Typical use::

    system = System.current()
    plan = plan_install(config, selection=parse_selection(None, None), system=system,
                        python=sys.executable)
    execute_install(plan, registry=system_registry())
"""

from webmodels.registration.check import RegistrationStatus, check_registrations
from webmodels.registration.execute import (
    InstallResult,
    Registry,
    UninstallResult,
    execute_install,
    execute_uninstall,
    load_receipt,
    survey,
    system_registry,
)
from webmodels.registration.locations import BROWSERS, Selection, System, parse_selection
from webmodels.registration.plans import (
    InstallPlan,
    Survey,
    UninstallPlan,
    plan_install,
    plan_uninstall,
)
from webmodels.registration.receipt import Receipt, receipt_path

__all__ = [
    "BROWSERS",
    "InstallPlan",
    "InstallResult",
    "Receipt",
    "RegistrationStatus",
    "Registry",
    "Selection",
    "Survey",
    "System",
    "UninstallPlan",
    "UninstallResult",
    "check_registrations",
    "execute_install",
    "execute_uninstall",
    "load_receipt",
    "parse_selection",
    "plan_install",
    "plan_uninstall",
    "receipt_path",
    "survey",
    "system_registry",
]
