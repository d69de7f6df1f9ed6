"""What `scripts/fuzz` found, each proven here on its own (docs/reliability.md)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.support.host import HostProcess

from webmodels.context import Origin
from webmodels.errors import HostError

# urlsplit raises ValueError("Invalid IPv6 URL") on an unbalanced bracket.
BRACKETED = ["https://a]", "https://[a.example", "https://a.ttp]s:le"]


@pytest.mark.parametrize("text", BRACKETED)
def test_an_origin_with_a_stray_bracket_is_a_bad_request(text: str) -> None:
    with pytest.raises(HostError) as caught:
        Origin.parse(text, field="context.partition.top_site")
    assert caught.value.code == "bad_request"


def test_a_request_context_with_a_stray_bracket_gets_a_reply_and_the_host_stays_up(
    host: HostProcess,
) -> None:
    """Before: the ValueError escaped the frame loop and the host exited, so this
    request and every later one of every page in the browser went unanswered."""
    context: dict[str, Any] = {
        "partition": {"top_site": "https://a]", "origin": "http://a.localhost:8000"}
    }
    reply = host.call("hello", {}, context=context)
    assert reply["ok"] is False and reply["error"]["code"] == "bad_request", reply
    assert host.call("hello")["ok"] is True
