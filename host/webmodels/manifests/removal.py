"""Removing a model manifest, and removing a file a manifest names (``webmodels rm``).

A manifest is removed with the files only it holds, under the rules of removing one
file (store.py ``delete``: a pinned file refuses unless forced, a pre-installed one
stays where it is); a file another manifest names stays. Everything is checked before
anything is removed (plan, then execute). A file that a manifest still names is never
removed silently: without ``force`` it refuses (``bad_request``), naming the
manifests; with ``force`` the manifests go first (their other files stay).
"""

from __future__ import annotations

from dataclasses import dataclass

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.store.manifests import StoredManifest, delete_manifest, manifests_naming
from webmodels.store.store import Store


@dataclass(frozen=True, slots=True)
class Removal:
    removed: tuple[Digest, ...]  # the manifest's files whose stored copy went
    kept: tuple[Digest, ...]  # files another manifest names, or pre-installed ones
    freed_bytes: int


def remove_manifest(store: Store, stored: StoredManifest, *, force: bool = False) -> Removal:
    """Forget ``stored`` and remove the files nothing else holds."""
    digest = stored.manifest.digest
    members = sorted({e.digest for e in stored.manifest.entries}, key=lambda d: d.hex)
    free, kept = [], []
    for member in members:
        others = [m for m in manifests_naming(store.index, member) if m.manifest.digest != digest]
        record = store.get(member)
        if others or record is None or not record.stored:
            kept.append(member)
        elif record.pinned and not force:
            raise HostError(
                "model_pinned",
                f"{member.short} of {stored.label} is pinned; unpin it or use --force",
            )
        else:
            free.append(member)
    delete_manifest(store.index, digest)
    freed = sum(store.delete(member, force=True) for member in free)
    return Removal(tuple(free), tuple(kept), freed)


def release_file(store: Store, digest: Digest, *, force: bool = False) -> list[StoredManifest]:
    """Make ``digest`` removable: refuse while a manifest names it, or (``force``)
    forget those manifests; the manifests forgotten."""
    holding = manifests_naming(store.index, digest)
    if holding and not force:
        labels = ", ".join(m.label for m in holding)
        raise HostError(
            "bad_request",
            f"{digest.short} is a file of the model {labels}; remove the model "
            f"(webmodels rm {holding[0].label}) or use --force to remove it too",
        )
    for stored in holding:
        delete_manifest(store.index, stored.manifest.digest)
    return holding
