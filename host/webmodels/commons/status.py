"""What the user is shown about the installed commons lists (CLI `commons ls|show`,
the popup's `manage.commons.list`): per key, its list, whether it is in force and,
if not, why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webmodels.commons import keeper
from webmodels.commons.lists import CommonsList, read_list
from webmodels.commons.trust import Trust
from webmodels.errors import HostError
from webmodels.signing import iso, key_id, parse_public_key
from webmodels.store.index import Index

REFUSED = "commons list refused: "


@dataclass(frozen=True, slots=True)
class ListStatus:
    listed: CommonsList
    project: bool  # signed by one of the project's keys
    trusted: bool  # its key is among the trusted ones
    problem: str | None  # why it is not in force; None when it is

    @property
    def in_force(self) -> bool:
        return self.problem is None

    def to_json(self, *, models: bool = False) -> dict[str, Any]:
        found: dict[str, Any] = {
            "key_id": self.listed.key_id,
            "version": self.listed.version,
            "expires": iso(self.listed.expires),
            "entries": len(self.listed.models),
            "project": self.project,
            "in_force": self.in_force,
            "problem": self.problem,
        }
        if models:
            found["models"] = [m.to_json() for m in self.listed.models]
        return found


def statuses(index: Index, trust: Trust, *, now: datetime) -> list[ListStatus]:
    """Every installed list, one per key, checked as a host would check it now."""
    return [
        _status(document, trust, now) for document in keeper.installed_documents(index).values()
    ]


def _status(document: bytes, trust: Trust, now: datetime) -> ListStatus:
    listed = read_list(document)
    trusted = trust.get(listed.key_id)
    try:
        trust.verify(document, now=now)
        problem = None
    except HostError as exc:
        problem = exc.message.removeprefix(REFUSED)
    project = trusted is not None and trusted.project
    return ListStatus(listed, project, trusted is not None, problem)


def find(found: list[ListStatus], key: str) -> ListStatus:
    """The list of the key named by its id, a unique start of it (4+ characters), or
    its public key text."""
    wanted = key.strip()
    if len(wanted) > 16:  # a public key in base64
        wanted = key_id(parse_public_key(wanted, what="KEY"))
    matches = [s for s in found if len(wanted) >= 4 and s.listed.key_id.startswith(wanted)]
    if len(matches) != 1:
        known = ", ".join(s.listed.key_id for s in found) or "none"
        why = "names several lists" if matches else "names no installed list"
        raise HostError("not_found", f"key {key} {why} (installed: {known})")
    return matches[0]
