"""Who may see which model. Pure: decisions from records and contexts only.

docs/design.md#privacy: a partition sees a model it obtained itself (a ``site`` reference), a
pre-installed one, or a common one (on the signed commons list, within the probe
budget of its top-level site; the caller works that out, commons/gate.py, and
passes ``common``), or one the user shared with its top-level site (popup).
Trusted callers (the popup, the CLI) see everything. Anything else behaves exactly
as if the model were absent.
"""

from __future__ import annotations

from webmodels.context import RequestContext
from webmodels.store.records import ModelRecord


def can_see(record: ModelRecord, context: RequestContext, *, common: bool = False) -> bool:
    if context.trusted:
        return True
    if record.preinstalled_path is not None:
        return True
    if context.partition is None:
        return False
    if str(context.partition.top_site) in record.shared_with:
        return True  # the user shared it with this site in the popup
    return common or context.partition.key in record.sites
