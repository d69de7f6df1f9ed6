"""The dispatcher maps methods to handlers and every exception to an error reply."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webmodels.context import RequestContext
from webmodels.dispatch import Call, Dispatcher
from webmodels.errors import ERROR_CODES, HostError
from webmodels.protocol.envelope import Request

PAGE = RequestContext.parse(
    {"partition": {"top_site": "https://a.example", "origin": "https://a.example"}}
)


def request(method: str, **params: Any) -> Request:
    return Request(id=1, method=method, params=params, context=None)


def make() -> Dispatcher:
    dispatcher = Dispatcher()

    def echo(call: Call) -> Mapping[str, Any]:
        return {"n": call.params.integer("n", default=0)}

    def explode(call: Call) -> Mapping[str, Any]:
        raise RuntimeError("boom with a secret path /home/user")

    def refuse(call: Call) -> Mapping[str, Any]:
        raise HostError("not_found", "nothing here", sha256="ab")

    dispatcher.add("test.echo", echo)
    dispatcher.add("test.explode", explode)
    dispatcher.add("test.refuse", refuse)
    dispatcher.add("manage.secret", echo, trusted_only=True)
    return dispatcher


def test_success_envelope() -> None:
    reply = make().handle(request("test.echo", n=3), PAGE)
    assert reply == {"id": 1, "ok": True, "result": {"n": 3}}


def test_unknown_method() -> None:
    reply = make().handle(request("test.nope"), PAGE)
    assert reply["ok"] is False and reply["error"]["code"] == "unknown_method"


def test_bad_params_name_the_field() -> None:
    reply = make().handle(request("test.echo", n="three"), PAGE)
    assert reply["error"]["code"] == "bad_request"
    assert reply["error"]["details"]["field"] == "n"


def test_host_error_keeps_code_and_details_for_trusted_callers() -> None:
    reply = make().handle(request("test.refuse"), RequestContext.trusted_local())
    assert reply["error"] == {
        "code": "not_found",
        "message": "nothing here",
        "details": {"sha256": "ab"},
    }
    # A page gets the code and its fixed meaning (tests/privacy/test_page_errors.py).
    page = make().handle(request("test.refuse"), PAGE)
    assert page["error"] == {
        "code": "not_found",
        "message": ERROR_CODES["not_found"],
        "details": {},
    }


def test_unexpected_exception_is_internal_and_leaks_nothing() -> None:
    reply = make().handle(request("test.explode"), PAGE)
    assert reply["error"]["code"] == "internal"
    assert "/home/user" not in str(reply)


def test_trusted_only_methods() -> None:
    dispatcher = make()
    assert dispatcher.handle(request("manage.secret"), PAGE)["error"]["code"] == "access_denied"
    trusted = dispatcher.handle(request("manage.secret", n=1), RequestContext.trusted_local())
    assert trusted["ok"] is True
