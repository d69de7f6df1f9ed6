"""Parsing requests into the envelope of PROTOCOL.md."""

from __future__ import annotations

import pytest

from webmodels.context import RequestContext
from webmodels.errors import HostError
from webmodels.protocol.envelope import BadRequest, dumps, parse_request


def test_valid_request() -> None:
    request = parse_request(b'{"id": 7, "method": "models.load", "params": {"a": 1}}')
    assert (request.id, request.method, dict(request.params)) == (7, "models.load", {"a": 1})
    assert request.context is None


@pytest.mark.parametrize(
    ("body", "code", "request_id"),
    [
        (b"\xff\xfe{}", "bad_frame", None),
        (b'{"id": 1, "method": "hello"', "bad_frame", None),
        (b'{"id": NaN, "method": "hello"}', "bad_frame", None),
        (b"[1, 2, 3]", "bad_request", None),
        (b'"hello"', "bad_request", None),
        (b'{"method": "hello"}', "bad_request", None),
        (b'{"id": true, "method": "hello"}', "bad_request", None),
        (b'{"id": 4, "method": "Hello World"}', "bad_request", 4),
        (b'{"id": 4, "method": "hello", "params": [1]}', "bad_request", 4),
        (b'{"id": "x", "method": "hello", "context": "trusted"}', "bad_request", "x"),
    ],
)
def test_bad_requests(body: bytes, code: str, request_id: object) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_request(body)
    assert caught.value.code == code
    assert caught.value.request_id == request_id


def test_context_cannot_be_half_forged() -> None:
    # A page that sends its own partition gets its context overwritten by the service
    # worker; a context without a partition is only accepted as trusted.
    with pytest.raises(HostError):
        RequestContext.parse({"trusted": False})
    ctx = RequestContext.parse(
        {
            "partition": {"top_site": "https://A.example:443", "origin": "https://b.example"},
            "user_activation": True,
        }
    )
    assert ctx.partition is not None
    assert ctx.partition.key == "https://a.example https://b.example"
    assert ctx.user_activation and not ctx.trusted


def test_dumps_is_compact_utf8() -> None:
    assert dumps({"a": "é"}) == '{"a":"é"}'.encode()
