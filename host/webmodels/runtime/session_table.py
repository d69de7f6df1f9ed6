"""`SessionTable`: the sessions the host holds, the partition each belongs to, and
the bounds on them. `SessionManager` builds and runs sessions; this table decides who may see one
and whether another may start.

* A session is found only through the partition that created it: for any other its
  id does not exist (``session_not_found``, the same answer as for an id never
  issued).
* Sessions are bounded per partition and in total, creations under way included;
  calls in flight (runs and creations, each holding a request thread) are bounded
  host-wide. Both answer ``busy`` with a fixed text and no figures: the host-wide
  ceiling answers exactly like a site's own limit, since another answer, or a count,
  would tell a page that other sites hold sessions (issue 11, hole 15).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from webmodels.errors import HostError
from webmodels.runtime.session_values import Session
from webmodels.runtime.settings import SessionSettings

NOT_FOUND = "no such session (released, unloaded after being idle, or never created)"
SESSIONS_BUSY = "too many sessions are open; release one, or try again later"
CALLS_BUSY = "too many model calls are running; try again shortly"


class SessionTable:
    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._reserved: dict[str, int] = {}  # creations under way, per partition
        self._calls = 0

    @contextlib.contextmanager
    def reservation(self, partition: str) -> Iterator[None]:
        """A place for one session of ``partition`` while it is created (`busy` when
        the partition or the host is at its bound); `add` the session inside."""
        with self._lock:
            mine = self._reserved.get(partition, 0) + sum(
                1 for s in self._sessions.values() if s.partition == partition
            )
            total = sum(self._reserved.values()) + len(self._sessions)
            if mine >= self.settings.max_per_partition or total >= self.settings.max_total:
                raise HostError("busy", SESSIONS_BUSY)
            self._reserved[partition] = self._reserved.get(partition, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._reserved[partition] -= 1

    @contextlib.contextmanager
    def slot(self, session: Session | None = None) -> Iterator[None]:
        """One of ``max_concurrent_calls``: runs and creations block a request thread
        each, and the host keeps some of its 8 for everything else."""
        with self._lock:
            if self._calls >= self.settings.max_concurrent_calls:
                raise HostError("busy", CALLS_BUSY)
            self._calls += 1
            if session is not None:
                session.calls += 1
        try:
            yield
        finally:
            with self._lock:
                self._calls -= 1
                if session is not None:
                    session.calls -= 1

    @property
    def calls(self) -> int:
        """Runs and creations holding a slot now."""
        return self._calls

    def add(self, session: Session) -> None:
        with self._lock:
            self._sessions[session.id] = session

    def find(self, session_id: str, partition: str) -> Session:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None or session.partition != partition:
            raise HostError("session_not_found", NOT_FOUND)
        return session

    def pop(self, session_id: str, partition: str) -> Session | None:
        """Take the partition's session out of the table; None when it has none by
        that id."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.partition != partition:
                return None
            del self._sessions[session_id]
        return session

    def pop_site(self, top_site: str) -> list[Session]:
        """Take out every session of the site's partitions."""
        prefix = f"{top_site} "
        with self._lock:
            gone = [s for s in self._sessions.values() if s.partition.startswith(prefix)]
            for session in gone:
                del self._sessions[session.id]
        return gone

    def drop(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)

    def pop_idle(self, cutoff: float) -> tuple[list[Session], bool]:
        """Take out the sessions without a call since ``cutoff`` (monotonic), and say
        whether the table is then empty, creations under way included."""
        with self._lock:
            idle = [s for s in self._sessions.values() if s.calls == 0 and s.last_used < cutoff]
            for session in idle:
                del self._sessions[session.id]
            empty = not self._sessions and not any(self._reserved.values())
        return idle, empty
