"""The visibility gate every page-facing method asks: `policy.can_see` plus the
commons lists and the probe budget, which need the index (so they are not in policy).

The models in force are the union of the lists in force: one last good list per
trusted key, each verified with its key and not expired (commons/trust.py).
A model the gate does not return behaves exactly as if it were absent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from webmodels import policy
from webmodels.commons import keeper
from webmodels.commons.lists import CommonsList
from webmodels.commons.trust import Trust, shipped_key_text
from webmodels.context import RequestContext
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.managed import Policy
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


__all__ = ["CommonsGate", "ProbeBudget", "shipped_document", "shipped_key_text", "trusted_keys"]


def trusted_keys(texts: Sequence[str] | None) -> tuple[Ed25519PublicKey, ...]:
    """The configured keys; None means the project's keys (commons/trust.py)."""
    return Trust.from_config(texts).public_keys


PRIVACY_MODES = frozenset({"strict", "relaxed"})
_NEVER = datetime.max.replace(tzinfo=UTC)


class CommonsGate:
    def __init__(
        self,
        store: Store,
        trust: Trust,
        budget: ProbeBudget,
        *,
        clock: Callable[[], float] = time.time,
        default_mode: str = "strict",
        managed: Policy | None = None,
    ) -> None:
        self.store = store
        self.default_mode = default_mode  # config (or policy); a locked policy: always
        self.managed = managed or Policy()
        self.trust = trust
        self.budget = budget
        self._clock = clock
        self._documents: dict[str, bytes] | None = None
        self._loaded: tuple[CommonsList, ...] = ()  # verified when read from the index
        self._in_force: tuple[CommonsList, ...] = ()
        self._digests: frozenset[Digest] = frozenset()
        self._next_expiry: datetime | None = None
        self._loaded_at = -RELOAD_S
        self._relaxed = False
        self._mode_at = -RELOAD_S

    def relaxed(self) -> bool:
        """The user's privacy mode is "relaxed": every site sees every stored model (the
        popup explains the cost). Re-read every few seconds, like the list."""
        if time.monotonic() - self._mode_at >= RELOAD_S:
            mode = self.default_mode
            if "privacy_mode" not in self.managed.locked:
                mode = self.store.setting("privacy_mode", mode)
            self._relaxed = mode == "relaxed"
            self._mode_at = time.monotonic()
        return self._relaxed

    def set_mode(self, mode: str) -> None:
        if mode not in PRIVACY_MODES:
            raise HostError("bad_request", f"privacy_mode must be one of {sorted(PRIVACY_MODES)}")
        self.managed.check_unlocked("privacy_mode")
        self.store.set_setting("privacy_mode", mode)
        self._relaxed, self._mode_at = mode == "relaxed", time.monotonic()

    def install_shipped(self) -> None:
        """Adopt the list shipped with this version when it is newer than the stored list
        of its key (the lists of other keys are left as they are)."""
        try:
            keeper.install(self.store.index, self.trust.verify(shipped_document(), now=self._now()))
        except (HostError, OSError) as exc:
            log.info("shipped commons list not installed: %s", exc)

    def install_files(self, paths: Sequence[Path]) -> None:
        """Adopt the lists an administrator deploys (``commons_lists`` in the policy file)
        when newer than the stored list of their key, as `install_shipped` does."""
        for path in paths:
            try:
                keeper.install(
                    self.store.index, self.trust.verify(path.read_bytes(), now=self._now())
                )
            except (HostError, OSError) as exc:
                log.warning("commons list %s not installed: %s", path, exc)

    def in_force(self) -> tuple[CommonsList, ...]:
        """The lists in force: the last good one of each trusted key, if it still
        verifies with that key and has not expired."""
        self._refresh()
        return self._in_force

    def is_listed(self, digest: Digest) -> bool:
        """On one of the lists in force (the union of the trusted keys' lists)."""
        self._refresh()
        return digest in self._digests

    def is_common(self, record: ModelRecord) -> bool:
        """Visible to every partition by design: pre-installed, or on a list in force
        (the probe budget still limits who learns it is stored)."""
        if record.preinstalled_path is not None:
            return True
        return self.is_listed(record.digest)

    def _refresh(self) -> None:
        if time.monotonic() - self._loaded_at >= RELOAD_S:
            documents = keeper.installed_documents(self.store.index)
            if documents != self._documents:
                self._documents = documents
                self._loaded = self._verified(documents)
                self._next_expiry = None  # recompute the union below
            self._loaded_at = time.monotonic()
        now = self._now()
        if self._next_expiry is None or now >= self._next_expiry:
            self._in_force = tuple(x for x in self._loaded if not x.expired(now))
            self._digests = frozenset().union(*(x.digests for x in self._in_force))
            self._next_expiry = min((x.expires for x in self._in_force), default=_NEVER)

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
        if not self.is_listed(digest) or context.partition is None:
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

    def _verified(self, documents: dict[str, bytes]) -> tuple[CommonsList, ...]:
        found = []
        for document in documents.values():
            try:
                found.append(self.trust.verify(document, now=self._now()))
            except HostError as exc:
                log.warning("a stored commons list is not in force: %s", exc.message)
        return tuple(found)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)
