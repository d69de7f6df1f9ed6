"""The request contexts that web pages' requests carry to the host (what the extension
adds to each page message), shared by the host-level tests.

Sites A, B and C are loopback origins (``http://a.localhost:8000``…), as a browser's
``*.localhost`` pages: pages that may make the host reach the tests' loopback model
servers. ``PUBLIC_A``/``PUBLIC_B`` are public https sites for tests where the host never
fetches. Every page here had a user gesture and none is trusted.
"""

from __future__ import annotations

from typing import Any

A = "http://a.localhost:8000"
B = "http://b.localhost:8000"
C = "http://c.localhost:8000"


def page_context(
    origin: str, *, top_site: str | None = None, user_activation: bool = True
) -> dict[str, Any]:
    """The context of a page at `origin` (in a frame when `top_site` is another site)."""
    partition = {"top_site": top_site or origin, "origin": origin}
    return {"partition": partition, "user_activation": user_activation, "trusted": False}


PAGE_A = page_context(A)
PAGE_B = page_context(B)
PAGE_C = page_context(C)
FRAME_IN_A = page_context("http://widget.localhost:8000", top_site=A)  # a widget framed by A
PUBLIC_A = page_context("https://a.example")
PUBLIC_B = page_context("https://b.example")
PUBLIC_FRAME_IN_A = page_context("https://widget.example", top_site="https://a.example")
