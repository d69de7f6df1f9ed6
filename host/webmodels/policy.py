"""Who may see which model. Pure: decisions from records and contexts only.

This is the first, conservative version of DESIGN §4: a partition sees a model it
obtained itself (a ``site`` reference) or a pre-installed one (common to all);
trusted callers (the popup, the CLI) see everything. Anything else behaves exactly
as if the model were absent. The commons list and user sharing extend `can_see`.
"""

from __future__ import annotations

from webmodels.context import RequestContext
from webmodels.store.records import ModelRecord


def can_see(record: ModelRecord, context: RequestContext) -> bool:
    if context.trusted:
        return True
    if record.preinstalled_path is not None:
        return True
    return context.partition is not None and context.partition.key in record.sites
