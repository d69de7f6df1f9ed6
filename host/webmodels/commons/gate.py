"""The visibility gate every page-facing method asks: `policy.can_see` plus the
commons list and the probe budget, which need the index (so they are not in policy).

A model the gate does not return behaves exactly as if it were absent (docs/design.md#privacy).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from webmodels import policy
from webmodels.commons import keeper
from webmodels.commons.lists import CommonsList, verify_list
from webmodels.context import RequestContext
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.signing import parse_public_key
from webmodels.store import Store
from webmodels.store.records import ModelRecord

log = logging.getLogger(__name__)

# Another process (the CLI's `commons update`) may install a list while a host runs.
RELOAD_S = 2.0


@dataclass(frozen=True, slots=True)
class ProbeBudget:
    limit: int = 16
    window_s: float = 24 * 3600.0


def shipped_document() -> bytes:
    return (resources.files("webmodels") / "data" / "commons.json").read_bytes()


def shipped_key_text() -> str:
    return (resources.files("webmodels") / "data" / "commons-public-key").read_text("ascii")


def trusted_keys(texts: Sequence[str] | None) -> tuple[Ed25519PublicKey, ...]:
    """The configured keys; None means the project's shipped key."""
    keys = texts or [shipped_key_text()]
    return tuple(parse_public_key(t, what="a commons key") for t in keys)


PRIVACY_MODES = frozenset({"strict", "relaxed"})


class CommonsGate:
    def __init__(
        self,
        store: Store,
        keys: Sequence[Ed25519PublicKey],
        budget: ProbeBudget,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.keys = tuple(keys)
        self.budget = budget
        self._clock = clock
        self._document: bytes | None = None
        self._current: CommonsList | None = None
        self._loaded_at = -RELOAD_S
        self._relaxed = False
        self._mode_at = -RELOAD_S

    def relaxed(self) -> bool:
        """The user's privacy mode is "relaxed": every site sees every stored model (the
        popup explains the cost). Re-read every few seconds, like the list."""
        if time.monotonic() - self._mode_at >= RELOAD_S:
            self._relaxed = self.store.setting("privacy_mode", "strict") == "relaxed"
            self._mode_at = time.monotonic()
        return self._relaxed

    def set_mode(self, mode: str) -> None:
        if mode not in PRIVACY_MODES:
            raise HostError("bad_request", f"privacy_mode must be one of {sorted(PRIVACY_MODES)}")
        self.store.set_setting("privacy_mode", mode)
        self._relaxed, self._mode_at = mode == "relaxed", time.monotonic()

    def install_shipped(self) -> None:
        """Adopt the list shipped with this version when it is newer than the stored one."""
        try:
            keeper.install(
                self.store.index, verify_list(shipped_document(), self.keys, now=self._now())
            )
        except (HostError, OSError) as exc:
            log.info("shipped commons list not installed: %s", exc)

    def current(self) -> CommonsList | None:
        """The list in force: the last good one, if it still verifies and has not expired."""
        if time.monotonic() - self._loaded_at >= RELOAD_S:
            document = keeper.installed_document(self.store.index)
            if document != self._document:
                self._document, self._current = document, self._verified(document)
            self._loaded_at = time.monotonic()
        listed = self._current
        return listed if listed is not None and not listed.expired(self._now()) else None

    def is_common(self, record: ModelRecord) -> bool:
        """Visible to every partition by design: pre-installed, or on the list in force
        (the probe budget still limits who learns it is stored)."""
        if record.preinstalled_path is not None:
            return True
        listed = self.current()
        return listed is not None and record.digest in listed.digests

    def visible(self, digest: Digest | None, context: RequestContext) -> ModelRecord | None:
        """The record if this caller may see it, else None (exactly like absent).

        Timing: building a record costs tens of microseconds more than finding none,
        enough for a page to tell "held by another site" from "never stored" in a few
        hundred probes (measured: +22 µs median, even with the probe budget spent). So
        for a page the decision comes first, from look-ups whose cost does not depend on
        whether another site holds the model (its own reference, a share with its site,
        pre-installed; then the commons list and the budget); a record is built only
        once the answer is yes (tests/privacy/test_timing_budget.py).
        """
        if digest is None:
            return None
        if context.trusted or self.relaxed():
            return self._servable(digest, context)
        if self._own_or_shared(digest, context):
            return self._servable(digest, context)
        listed = self.current()
        if listed is None or digest not in listed.digests or context.partition is None:
            return None
        # Hits and misses are charged alike, so the budget reveals nothing either.
        within = keeper.charge(
            self.store.index,
            top_site=str(context.partition.top_site),
            digest=digest,
            limit=self.budget.limit,
            window_s=self.budget.window_s,
            now=self._clock(),
        )
        return self._servable(digest, context, common=True) if within else None

    def _own_or_shared(self, digest: Digest, context: RequestContext) -> bool:
        """Point look-ups on a primary key and an index: one B-tree descent each,
        whoever else holds the model."""
        partition = context.partition.key if context.partition is not None else ""
        top_site = str(context.partition.top_site) if context.partition is not None else ""
        rows = self.store.index.query(
            "SELECT 1 FROM refs WHERE sha256 = ? AND kind = 'site' AND key = ? "
            "UNION ALL SELECT 1 FROM refs WHERE sha256 = ? AND kind = 'share' AND key = ? "
            "UNION ALL SELECT 1 FROM preinstalled WHERE sha256 = ? LIMIT 1",
            (digest.hex, partition, digest.hex, top_site, digest.hex),
        )
        return bool(rows)

    def _servable(
        self, digest: Digest, context: RequestContext, *, common: bool = False
    ) -> ModelRecord | None:
        record = self.store.get(digest)
        if record is None or not record.servable:
            return None
        if self.relaxed() or policy.can_see(record, context, common=common):
            return record
        return None

    def prune(self) -> int:
        """Forget probe charges past the window, of every site (at start: a site that
        never comes back leaves none behind; on the request path the delete would cost
        time that depends on other sites' charges)."""
        cutoff = self._clock() - self.budget.window_s
        with self.store.index.write() as db:
            return int(
                db.execute("DELETE FROM probe_charges WHERE charged_at <= ?", (cutoff,)).rowcount
            )

    def _verified(self, document: bytes | None) -> CommonsList | None:
        if document is None:
            return None
        try:
            return verify_list(document, self.keys, now=self._now())
        except HostError as exc:
            log.warning("the stored commons list is not in force: %s", exc.message)
            return None

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)
