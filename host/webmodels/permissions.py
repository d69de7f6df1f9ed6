"""The host's files are the user's alone: folders 0700, files 0600 (blobs 0400).

The index lists the sites the user visited and the logs name models and sites, so no
other local account may read them, whatever the umask (with 022 they were 0755/0644:
PRIVACY.md, hole 7). Folders and files are created private (`make_private_dir`,
`private_opener`; SQLite gives its -wal and -shm files the database file's mode), the
host and the CLI run with a private umask for what others create, and the host
tightens an older install's own paths when it starts (`tighten`). Folders the host
did not create — pre-installed model folders, the parents of its data folder — are
left as they are. `webmodels doctor` reports what is still loose (`loose`).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from webmodels.config import Config

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
OTHERS = 0o077  # group and other bits: none may be set
PRIVATE_UMASK = 0o077
PROVIDERS_FILE = "providers.json"  # the execution-provider probe's cache, in the home


def restrict_umask() -> None:
    """Everything this process (and its children) creates from now on is private."""
    os.umask(PRIVATE_UMASK)


def private_opener(path: str, flags: int) -> int:
    """For ``open(..., opener=private_opener)``: a new file is created 0600 (the umask
    can only take bits away)."""
    return os.open(path, flags, PRIVATE_FILE)


def create_private_file(path: Path) -> None:
    """Create `path` empty and 0600 unless it exists (e.g. before SQLite opens it)."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE))


def make_private_dir(path: Path, *, own: Path) -> None:
    """Create `path` and its missing parents; those at or below `own` (the host's own
    tree) are made 0700, whatever the umask. Existing folders are left as they are."""
    missing = []
    probe = path
    while not probe.exists() and probe.parent != probe:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # another process made it meanwhile
        if folder == own or own in folder.parents:
            os.chmod(folder, PRIVATE_DIR)  # mkdir's mode is filtered by the umask


def own_paths(config: Config) -> list[tuple[Path, bool]]:
    """The host's own paths, each with whether to walk into it: the data folder itself
    (it may hold other things, e.g. the browser registration's launcher), the store,
    the probe cache and the log folder."""
    home = config.home
    return [
        (home, False),
        (config.store_dir, True),
        (home / PROVIDERS_FILE, False),
        (config.log_dir, True),
    ]


def tighten(config: Config) -> int:
    """Take the group and other bits off every own path; how many changed. Cheap: one
    `lstat` per entry (a store holds one file per model)."""
    changed = 0
    store = config.store_dir
    settled = (store / "blobs", store / "segments-v1")
    for path, mode in _entries(config, settled=settled):
        if mode & OTHERS:
            try:
                os.chmod(path, stat.S_IMODE(mode) & ~OTHERS)
                changed += 1
            except OSError:  # not ours to change (another owner): doctor reports it
                continue
    return changed


def loose(config: Config) -> list[Path]:
    """Own paths that another local account could read or enter."""
    return [path for path, mode in _entries(config) if mode & OTHERS]


def _entries(config: Config, *, settled: tuple[Path, ...] = ()) -> Iterator[tuple[Path, int]]:
    """Own paths and their modes. Under `settled` (the folders of blobs and segments),
    a folder already private is not entered: nobody else can reach what it holds, and
    the host writes its blobs and segments 0400;
    so a host start does not lstat() every stored file (at 10,000 files that walk
    took most of a second of every start)."""
    if sys.platform == "win32":  # pragma: no cover - ACLs, not mode bits
        return
    keep = tuple(config.preinstalled_dirs)
    for root, walk in own_paths(config):
        yield from _walk(root, walk=walk, keep=keep, settled=settled)


def _walk(
    root: Path, *, walk: bool, keep: Iterable[Path], settled: tuple[Path, ...] = ()
) -> Iterator[tuple[Path, int]]:
    if root in keep or any(k in root.parents for k in keep):
        return
    try:
        mode = root.lstat().st_mode
    except OSError:
        return
    if stat.S_ISLNK(mode):
        return  # never follow a link out of the host's tree
    yield root, mode
    if not mode & OTHERS and any(folder in root.parents for folder in settled):
        return  # a private folder of blobs or segments (see `_entries`)
    if walk and stat.S_ISDIR(mode):
        try:
            children = sorted(root.iterdir())
        except OSError:
            return
        for child in children:
            yield from _walk(child, walk=True, keep=keep, settled=settled)
