"""One verified, resumable transfer of one file into a partial file of the store.

The partial file and its sidecar (``tmp/job-<id>.partial`` / ``.json``) survive a
killed process: the next attempt re-hashes the bytes on disk and asks for the rest.
Only `Transfer.run` touches the network; what a reply means is decided in `resume`,
and the session it fetches with is made in `session`.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.fetch import resume
from webmodels.fetch.access import AccessRefused, PageAccess, check_size_allowed, page_error
from webmodels.fetch.interrupt import BodyReads
from webmodels.fetch.partial import read_sidecar, write_sidecar
from webmodels.fetch.resume import Action, ResumeState
from webmodels.store.blobs import PendingBlob, reserve_for

if TYPE_CHECKING:
    import requests

# `requests` (and session.py, guard.py, which subclass its adapter) is imported when a
# transfer runs, not when the host starts: the host answers `hello` without it.

log = logging.getLogger(__name__)
CHUNK = 256 << 10  # a killed host loses at most one chunk it had read


def new_session() -> requests.Session:
    """The session downloads use (fetch/session.py); the job manager and tests make
    their sessions through this function."""
    from webmodels.fetch.session import new_session as make

    return make()


Progress = Callable[[int, int | None], None]  # (loaded, total)


@dataclass(frozen=True, slots=True)
class TransferOptions:
    connect_timeout_s: float = 10.0
    stall_timeout_s: float = 30.0  # no byte for this long: drop the connection, resume
    max_attempts: int = 6  # rounds over the mirrors
    backoff_s: float = 0.5  # doubled each round, capped
    backoff_max_s: float = 15.0
    max_redirects: int = 10


class Cancelled(Exception):
    """The job was cancelled while transferring (not an error of the transfer)."""


class _Retry(Exception):
    """This attempt failed in a way the next one may not; `reason` says how."""

    def __init__(self, reason: str, *, connection: bool = False) -> None:
        super().__init__(reason)
        self.connection = connection  # no HTTP answer at all (unreachable network)


class _MirrorFailed(Exception):
    def __init__(self, error: HostError) -> None:
        super().__init__(error.message)
        self.error = error


class Transfer:
    def __init__(
        self,
        *,
        urls: Sequence[str],
        expected: Digest,
        expected_size: int | None,
        partial: Path,
        size_limit: int | None = None,
        quota_left: int | None = None,
        options: TransferOptions,
        session: requests.Session,
        progress: Progress,
        should_stop: Callable[[], bool],
        access: PageAccess | None = None,
        mirrors: Sequence[str] = (),
    ) -> None:
        """`access`: the limits of the page that chose `urls` (None: the URLs come
        from the user's catalogs or the CLI, and are not limited). `mirrors`: the
        configured mirrors (fetch/mirrors.py), tried first by digest, as the host."""
        self.expected = expected
        self.expected_size = expected_size
        self.size_limit = size_limit
        self.quota_left = quota_left
        self.partial = partial
        self.sidecar = partial.with_suffix(".json")
        self.options = options
        self.session = session
        self.session.max_redirects = options.max_redirects
        self.access = access
        if access is not None:
            from webmodels.fetch import guard
            from webmodels.fetch.session import socket_options

            guard.limit(session, access, socket_options=socket_options())
        from webmodels.fetch.mirrors import Sources  # with `requests`, as a transfer runs

        self.sources = Sources(
            urls, mirrors, expected, session, new_session=new_session, host_oci=access is None
        )
        self.urls = self.sources.urls
        self.progress = progress
        self.should_stop = should_stop
        self.state = read_sidecar(self.sidecar)
        self.hasher = hashlib.sha256()
        self.offset = 0
        self.received = 0  # body bytes read in this run (not found on disk)
        self.spliced = False  # the bytes on disk continue an earlier response
        self.restarted: set[str] = set()  # URLs asked again from 0 after wrong bytes
        self.reads = BodyReads()  # lets `interrupt` wake a read in flight

    # -- the loop over attempts and mirrors -------------------------------------------

    def run(self) -> PendingBlob:
        try:
            return self._run_on_disk()
        except HostError as exc:
            if self.access is None:
                raise
            # A page learns a code, never what it could not have read itself.
            log.warning("download for %s failed: %s: %s", self.access.origin, exc.code, exc)
            raise page_error(exc) from exc
        finally:
            self.sources.close()

    def _run_on_disk(self) -> PendingBlob:
        try:
            return self._run()
        except OSError as exc:  # the sidecar, the fsync: not only the body's writes
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise HostError("disk_full", "the disk holding the store is full") from exc
            raise

    def _run(self) -> PendingBlob:
        self._prime()
        mirror_errors: dict[str, HostError] = {}
        for attempt in range(self.options.max_attempts):
            reasons: dict[str, _Retry] = {}
            for url in self.urls:
                if url in mirror_errors:
                    continue
                self._check_stop()
                try:
                    self._attempt(url)
                    return self._finish()
                except HostError as exc:
                    if exc.code != "integrity_mismatch":
                        raise
                    if retry := self._wrong_bytes(url, exc, mirror_errors):
                        reasons[url] = retry
                except _Retry as exc:
                    log.warning("download %s attempt %d: %s", url, attempt + 1, exc)
                    reasons[url] = exc
                except _MirrorFailed as exc:
                    log.warning("download %s refused: %s", url, exc)
                    mirror_errors[url] = exc.error
            if len(mirror_errors) == len(self.urls):
                self.discard()
                raise self.sources.failed(mirror_errors)
            if reasons and all(r.connection for r in reasons.values()) and self.received == 0:
                # No server answered at all: offline. Fail fast (PROTOCOL.md: "fails at
                # once"), also when an earlier run left a partial file to resume.
                raise HostError(
                    "network_unavailable",
                    "the model's servers cannot be reached and it is not stored: "
                    + self._summary(mirror_errors, reasons),
                    reason=str(list(reasons.values())[-1]),
                )
            self._sleep(min(self.options.backoff_max_s, self.options.backoff_s * 2**attempt))
        raise HostError(
            "download_failed",
            f"gave up after {self.options.max_attempts} rounds over {len(self.urls)} URL(s): "
            + self._summary(mirror_errors, reasons),
        )

    def _summary(self, refused: dict[str, HostError], retried: dict[str, _Retry]) -> str:
        failures = {u: HostError("download_failed", str(r)) for u, r in retried.items()}
        return self.sources.failed({**refused, **failures}).message

    def _wrong_bytes(
        self, url: str, error: HostError, mirror_errors: dict[str, HostError]
    ) -> _Retry | None:
        """Blame the mirror for bytes that hash wrong, unless some of them were kept
        from an earlier response or run (a torn write, a server that changed the file
        under the same ETag): then ask once more from byte 0."""
        log.warning("download %s: %s", url, error.message)
        spliced = self.spliced
        self._truncate()
        if self.sources.is_mirror(url):
            self.received = 0  # whether the page's own URLs answered, not the mirror

        if spliced and url not in self.restarted:
            self.restarted.add(url)
            return _Retry(f"{error.message}; downloading it again from the start")
        mirror_errors[url] = error  # wrong bytes: never ask this URL again
        return None

    def _attempt(self, url: str) -> None:
        import requests

        headers = resume.request_headers(self.state, url=url, offset=self.offset)
        try:
            response = self.sources.get(
                url,
                headers=headers,
                stream=True,
                timeout=(self.options.connect_timeout_s, self.options.stall_timeout_s),
            )
        except HostError as exc:  # a mirror registry's auth refused: try the next source
            raise _MirrorFailed(HostError(exc.code, f"{url}: {exc.message}")) from exc
        except AccessRefused as exc:  # never retried: it would be refused again
            raise _MirrorFailed(HostError("download_failed", f"{url}: {exc}")) from exc
        except requests.exceptions.ConnectionError as exc:
            raise _Retry(f"cannot connect: {_short(exc)}", connection=True) from exc
        except requests.exceptions.Timeout as exc:
            raise _Retry(f"timed out: {_short(exc)}") from exc
        except requests.exceptions.TooManyRedirects as exc:
            raise _MirrorFailed(HostError("download_failed", f"{url}: too many redirects")) from exc
        except requests.exceptions.RequestException as exc:
            raise _MirrorFailed(HostError("download_failed", f"{url}: {_short(exc)}")) from exc
        with response, self.reads.reading(response):
            self._check_stop()  # stopped while the headers were awaited
            self._take(url, response, ranged=bool(headers))

    def _take(self, url: str, response: requests.Response, *, ranged: bool) -> None:
        reply = resume.classify(
            response.status_code, response.headers, offset=self.offset, ranged=ranged
        )
        if reply.action is Action.RETRY:
            raise _Retry(reply.reason)
        if reply.action is Action.FAIL_MIRROR:
            raise _MirrorFailed(HostError("download_failed", f"{url}: {reply.reason}"))
        if reply.action is Action.RETRY_FROM_ZERO:
            self._truncate()
            raise _Retry(reply.reason)
        if reply.action is Action.APPEND:
            self.spliced = self.offset > 0
        if reply.action is Action.RESTART:
            self._truncate()
            self.state = resume.remember(
                self.state, url=url, headers=response.headers, total=reply.total
            )
        total = reply.total if reply.total is not None else self.state.total
        self._check_size(url, total)
        self._check_limit(total)
        self._save_state()
        self._stream(response, total)

    # -- bytes ------------------------------------------------------------------------

    def _stream(self, response: requests.Response, total: int | None) -> None:
        needed = (total or 0) - self.offset
        free = shutil.disk_usage(self.partial.parent).free
        if needed > 0 and free < needed + reserve_for(needed):
            raise HostError(
                "disk_full",
                f"{needed} bytes needed but only {free} free (with a reserve); free some space",
                needed=needed,
                free=free,
            )
        # Say the size at once: a slow link fills the first chunk only after seconds, and
        # the popup and the page should show "0 B of N" rather than nothing until then.
        self.progress(self.offset, total)
        try:
            with self._open() as out:
                self._copy(response, out)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise HostError("disk_full", "the disk holding the store is full") from exc
            raise
        if total is not None and self.offset < total:
            raise _Retry(f"connection closed at {self.offset} of {total} bytes")
        if total is not None and self.offset > total:
            self._truncate()
            raise _Retry("more bytes than announced")

    def _copy(self, response: requests.Response, out: BinaryIO) -> None:
        import http.client

        import requests

        from webmodels.fetch.session import body_reader

        buffer = memoryview(bytearray(CHUNK))
        read = body_reader(response)
        try:
            while n := read(buffer):
                chunk = buffer[:n]
                out.write(chunk)
                self.hasher.update(chunk)
                self.offset += n
                self.received += n
                self.progress(self.offset, self.state.total)
                self._check_limit(self.offset)  # servers that announce no length
                self._check_stop()
            self._check_stop()  # `interrupt` ends the body early: not a short response
        except (requests.exceptions.RequestException, OSError, http.client.HTTPException) as exc:
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            self._check_stop()  # the socket `interrupt` shut
            raise _Retry(f"connection lost at {self.offset} bytes: {_short(exc)}") from exc
        except Exception as exc:  # urllib3 ProtocolError / ReadTimeoutError subclasses
            if type(exc).__module__.startswith("urllib3"):
                self._check_stop()
                raise _Retry(f"connection lost at {self.offset} bytes: {_short(exc)}") from exc
            raise
        finally:
            out.flush()

    def _finish(self) -> PendingBlob:
        with self.partial.open("rb+") as fh:
            os.fsync(fh.fileno())
        digest = Digest(self.hasher.hexdigest())
        if digest != self.expected:
            raise HostError(
                "integrity_mismatch",
                f"the downloaded bytes hash to {digest.hex}, not {self.expected.hex}",
                expected=self.expected.hex,
                actual=digest.hex,
            )
        self.sidecar.unlink(missing_ok=True)
        return PendingBlob(self.partial, digest, self.offset)

    def discard(self) -> None:
        self.partial.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)

    # -- state on disk ------------------------------------------------------------------

    def _prime(self) -> None:
        """Re-hash what a previous attempt left, so the transfer continues after it."""
        if not self.partial.exists() or self.state.url is None:
            self._truncate()
            return
        with self.partial.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                self.hasher.update(chunk)
                self.offset += len(chunk)
        log.info("resuming %s at %d bytes", self.expected.short, self.offset)
        self.progress(self.offset, self.state.total)

    def _open(self) -> BinaryIO:
        fh = self.partial.open("r+b" if self.partial.exists() else "wb")
        fh.seek(self.offset)
        fh.truncate()
        return fh

    def _truncate(self) -> None:
        with self.partial.open("wb"):
            pass
        self.hasher = hashlib.sha256()
        self.offset = 0
        self.spliced = False
        self.state = ResumeState()
        self._save_state()

    def _save_state(self) -> None:
        write_sidecar(self.sidecar, self.state)

    def _check_size(self, url: str, total: int | None) -> None:
        if self.expected_size is not None and total is not None and total != self.expected_size:
            raise _MirrorFailed(
                HostError(
                    "integrity_mismatch",
                    f"{url} serves {total} bytes; the model has {self.expected_size}",
                    expected_size=self.expected_size,
                    served_size=total,
                )
            )

    def _check_limit(self, size: int | None) -> None:
        check_size_allowed(size, quota_left=self.quota_left, size_limit=self.size_limit)

    def _check_stop(self) -> None:
        if self.should_stop():
            raise Cancelled()

    def interrupt(self) -> None:
        """Wake a body read blocked in another thread (fetch/interrupt.py), once
        `should_stop` says so. Any thread."""
        self.reads.interrupt()

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._check_stop()
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
