"""What `scripts/fuzz` found, each proven here on its own (docs/reliability.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.support.host import HostProcess

from webmodels.catalogs import documents
from webmodels.context import Origin
from webmodels.errors import ERROR_CODES, HostError

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


@pytest.mark.parametrize("url", [*BRACKETED, "https://a.example:99999/m"])
def test_a_catalog_url_with_a_stray_bracket_or_bad_port_is_refused(url: str) -> None:
    """Before: the catalog parser raised ValueError (not a documented refusal) on such a
    URL in a signed catalog's payload."""
    entry = {"name": "fuzz/tiny", "version": "1.0.0", "sha256": "0" * 63 + "1", "size": 10}
    payload = {"version": 1, "expires": "2027-01-05T12:43:17Z", "catalog": "fuzz"}
    for model in ({**entry, "urls": [url]}, {**entry, "files": [_file(url)], "urls": []}):
        document = json.dumps({**payload, "models": [model]}).encode()
        with pytest.raises(HostError) as caught:
            documents.parse_payload(document)
        assert caught.value.code in ERROR_CODES


@pytest.mark.parametrize("url", BRACKETED)
def test_a_page_url_with_a_stray_bracket_is_a_bad_request(host: HostProcess, url: str) -> None:
    context = {
        "partition": {"top_site": "http://a.localhost:8000", "origin": "http://a.localhost:8000"}
    }
    query = {"url": url, "integrity": "sha256-" + "A" * 43 + "="}
    reply = host.call("models.load", {"query": query}, context=context)
    assert reply["ok"] is False and reply["error"]["code"] == "bad_request", reply


def _file(url: str) -> dict[str, Any]:
    return {"path": "model.onnx", "url": url, "sha256": "0" * 63 + "1", "size": 10, "role": "graph"}
