"""Reads that start part-way into a stored file: where a loopback read that broke
(the host restarted, the connection was reset) resumes (docs/design.md#fast-byte-paths).

A plain file is sent from its offset by ``sendfile`` (`LoopbackServer.issue`); a file
kept as segments by `send_from` here: the part the offset falls in from there, then the
rest of its recipe as a whole read sends it.
"""

from __future__ import annotations

import errno
import socket

from webmodels.errors import HostError
from webmodels.store.segmented import SegmentedFiles
from webmodels.store.segments import Inline, Recipe


def send_from(files: SegmentedFiles, recipe: Recipe, offset: int, conn: socket.socket) -> None:
    """The file's bytes from `offset` on (0 <= offset <= size) into `conn`."""
    position = 0
    for index, part in enumerate(recipe.parts):
        end = position + part.size
        if end <= offset:
            position = end
            continue
        inner = offset - position
        if isinstance(part, Inline):
            conn.sendall(part.data[inner:])
        else:  # a lost segment ends the transfer short, as in a whole read
            path, start = files.store.locate(part)
            with path.open("rb") as fh:
                if conn.sendfile(fh, start + inner, part.size - inner) != part.size - inner:
                    raise OSError(errno.EIO, f"segment {part.digest.hex} is short")
        files.send_parts(Recipe(recipe.parts[index + 1 :]), conn)
        return


def check_offset(offset: int, size: int) -> None:
    """`bad_request` for an offset at or past the end of a non-empty file."""
    if offset >= size and offset > 0:
        raise HostError("bad_request", "params.offset must be below the model's size")
