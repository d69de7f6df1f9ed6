"""PROTOCOL.md lists every method the host serves and every error code, with the
same meaning text as the host's table (a drift here breaks pages and the extension)."""

from __future__ import annotations

import re
from pathlib import Path

from webmodels.dispatch import Dispatcher
from webmodels.errors import ERROR_CODES
from webmodels.methods import cos, hello, manage, models, sessions

DOC = (Path(__file__).resolve().parents[1] / "PROTOCOL.md").read_text(encoding="utf-8")


def test_every_error_code_is_documented_with_its_meaning() -> None:
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| ([^|]+?) \|", DOC, flags=re.M))
    assert rows == dict(ERROR_CODES)


def test_every_method_has_a_section_with_an_example() -> None:
    dispatcher = Dispatcher()
    for module in (hello, models, cos, manage, sessions):
        module.register(dispatcher, host=_NoHost())  # type: ignore[arg-type]
    for method in dispatcher.methods():
        heading = re.search(rf"^### `{re.escape(method)}`.*$", DOC, flags=re.M)
        assert heading, f"PROTOCOL.md has no section for {method}"
        section = DOC[heading.end() : DOC.find("\n### ", heading.end())]
        assert f'"method": "{method}"' in section, f"no example request for {method}"


class _NoHost:
    store = None
    probe = None
