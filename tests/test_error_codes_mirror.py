"""The extension's copy of the error-code table (extension/shared/error-codes.js) is
the host's (webmodels.errors.ERROR_CODES): same codes, same meanings, same order
(the table is append-only, so order is history)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from webmodels.errors import ERROR_CODES

MIRROR = Path(__file__).resolve().parents[1] / "extension" / "shared" / "error-codes.js"
TABLE = re.compile(r"export const ERROR_CODES = Object\.freeze\(\{(?P<body>.*?)\n\}\);", re.S)
ENTRY = re.compile(r'^\s*(?P<code>"[a-z_]+"):\s*(?P<meaning>"(?:[^"\\]|\\.)*"),\s*$')


def mirrored_codes() -> list[tuple[str, str]]:
    match = TABLE.search(MIRROR.read_text(encoding="utf-8"))
    assert match, f"{MIRROR} has no `export const ERROR_CODES = Object.freeze({{...}});`"
    entries = []
    for line in match["body"].splitlines():
        if not line.strip() or line.strip().startswith("//"):
            continue
        entry = ENTRY.match(line)
        assert entry, f"unexpected line in the mirrored table: {line!r}"
        entries.append((json.loads(entry["code"]), json.loads(entry["meaning"])))
    return entries


def test_the_extension_mirrors_the_hosts_error_codes_exactly() -> None:
    assert mirrored_codes() == list(ERROR_CODES.items())


def test_the_mirror_has_no_duplicate_codes() -> None:
    codes = [code for code, _ in mirrored_codes()]
    assert len(codes) == len(set(codes))
