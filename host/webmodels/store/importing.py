"""Importing a file the user chose (``webmodels import``) into the store: `import_file`.

The whole-file store copies the file into a temp file while hashing it, parses the
copy and publishes it (`Store.ingest`). With segments on, a file of up to
`ONE_PASS_MAX` bytes is read once, into memory, and everything comes from that one
copy: the file's SHA-256, its metadata (``onnx`` parsed the whole file in memory
before too), where it is cut and the segments written straight from it. No temp
copy of the whole file is written, flushed or removed, and the segments' flush is
the only one. Hashing overlaps the rest on a second thread: the whole file is hashed
while it is cut and its metadata parsed, each segment while it is written
(`SegmentStore.ingest_bytes`). A larger file takes the temp-file route, its segments
cut from the copy (`SegmentStore.ingest`).

The guarantees do not change: the SHA-256 of the whole file is known before anything
is indexed; each segment reaches the disk before it is renamed into place and is
renamed before the index transaction naming it commits; a segment already held costs
the steps a new one does (segments/segment_store.py); a segment that `gc` removed in
between is written again from the same bytes inside the transaction; a process
killed at any point leaves only temp files of a dead writer and segments no recipe
names, which the next start and `gc` remove.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.store.blobs import CHUNK, PendingBlob, Progress, disk_error
from webmodels.store.metadata import (
    ModelMetadata,
    onnx_metadata_of,
    read_onnx_metadata,
    sniff_bytes,
    sniff_format,
)
from webmodels.store.records import ImportResult
from webmodels.store.segments import Recipe
from webmodels.store.segments.split import plan_bytes

if TYPE_CHECKING:
    from webmodels.store.store import Store

# Bytes: larger files are copied to a temp file first. Held in memory, a file costs its
# size in RSS, and nothing may hold a whole large file in memory (docs/manifests.md).
ONE_PASS_MAX = 64 << 20


def source_error(source: Path, exc: OSError) -> HostError:
    """What reading an import's source failed with, as the user is told it (our own
    disk's errors are HostErrors already, raised where they happen)."""
    if isinstance(exc, FileNotFoundError):
        return HostError("not_found", f"no such file: {source}")
    if isinstance(exc, PermissionError):
        return HostError("access_denied", f"cannot read {source}: {exc}")
    return HostError("internal", f"cannot read {source}: {exc.strerror or exc}")


def import_file(
    store: Store,
    path: Path,
    name: str | None,
    version: str | None,
    raw: bool,
    progress: Progress | None,
) -> ImportResult:
    """Copy a file into the store (hashing as it goes). ONNX unless ``raw``."""
    source = Path(path)
    if source.is_dir():
        raise HostError("bad_request", f"{source} is a folder, not a model file")
    held: bytearray | None = None
    pending: PendingBlob | None = None
    try:
        size = source.stat().st_size if source.is_file() else None
        with source.open("rb") as fh:
            if store.segmented.enabled and size is not None and size <= ONE_PASS_MAX:
                store.files.check_free_space(size)
                held = _read_whole(fh, size, progress)
            else:
                # Kept as segments, the temp file is never published: the segments'
                # own flush makes what is stored durable (segments/durable.py).
                pending = store.files.write_stream(
                    fh,
                    expected_size=size,
                    progress=progress,
                    durable=not store.segmented.enabled,
                )
    except OSError as exc:
        raise source_error(source, exc) from exc
    refs = [("import", str(source.absolute()))]
    if held is not None:
        return _import_held(store, held, raw=raw, refs=refs, name=name, version=version)
    assert pending is not None
    try:
        try:
            metadata = (
                ModelMetadata(format=sniff_format(pending.temp_path))
                if raw
                else read_onnx_metadata(pending.temp_path)
            )
        except OSError as exc:  # the temp file's disk failed
            raise disk_error(exc, store.root) from exc
        return store.ingest(
            pending, metadata, origin="imported", refs=refs, name=name, version=version
        )
    finally:
        store.files.discard(pending)  # no-op once published


def _read_whole(fh: io.BufferedReader, size: int, progress: Progress | None) -> bytearray:
    """The file's bytes as read now (a file that changed size since its ``stat``
    is taken as it reads: what is stored is what was hashed)."""
    data = bytearray(size)
    got = 0
    with memoryview(data) as view:
        while got < size:
            count = fh.readinto(view[got : got + CHUNK])
            if not count:
                break
            got += count
            if progress:
                progress(got)
    del data[got:]
    while more := fh.read(CHUNK):  # it grew
        data += more
        if progress:
            progress(len(data))
    return data


def _import_held(
    store: Store,
    data: bytearray,
    *,
    raw: bool,
    refs: list[tuple[str, str]],
    name: str | None,
    version: str | None,
) -> ImportResult:
    # The file's SHA-256 on a second thread (hashlib releases the GIL for the whole
    # call) while this one finds where it is cut, parses its metadata and writes the
    # segments (whose own hashes take a third thread: `SegmentStore.ingest_bytes`): on
    # a machine of two cores or more, the two hashes of every byte overlap each other
    # and the writes. The file's name is known before anything is indexed.
    written: list[Recipe] = []  # in place: freed again if the publish fails
    with memoryview(data) as view:
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-hash") as pool:
                hashing = pool.submit(_sha256, data)
                layout = plan_bytes(data)
                metadata = (
                    ModelMetadata(format=sniff_bytes(bytes(data[:64])))
                    if raw
                    else onnx_metadata_of(data)
                )
                written.append(store.segmented.store.ingest_bytes(view, layout))
                digest = hashing.result()
            # No temp file holds these bytes: the name is never created (`Store.ingest`
            # publishes the recipe, not a file, and discarding the name removes nothing).
            unwritten = store.files.tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex}.held"
            pending = PendingBlob(unwritten, digest, len(data))
            fresh = [written[0]]

            def write() -> Recipe:
                """The segments written above; written again when asked again (a
                collector removed some before the publish's transaction)."""
                if fresh:
                    return fresh.pop()
                written.append(store.segmented.store.ingest_bytes(view, layout))
                return written[-1]

            return store.ingest(
                pending,
                metadata,
                origin="imported",
                refs=refs,
                name=name,
                version=version,
                write=write,
            )
        except BaseException as exc:
            # `Store.ingest` takes back what a failed publish wrote by cutting its temp
            # file again; these bytes have none, so their segments are named from here.
            segments = [segment for recipe in written for segment in recipe.segments]
            store.segmented.remove_unnamed(store.index, segments)
            if isinstance(exc, OSError):  # writing the segments: our disk's error
                raise disk_error(exc, store.root) from exc
            raise


def _sha256(data: bytearray) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest())
