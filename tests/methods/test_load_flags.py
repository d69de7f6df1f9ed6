"""`models.load` takes `prefetch` and `compile` as booleans only, from a page, whatever
the model is (hostile input is refused before any work, not ignored for some models)."""

from __future__ import annotations

import os

import pytest

from methods.test_sessions import upload
from support.contexts import PAGE_A
from support.host import HostProcess


@pytest.mark.parametrize(
    "flags", [{"compile": "yes"}, {"compile": 1}, {"prefetch": {"compile": True}}, {"prefetch": 0}]
)
def test_load_refuses_flags_that_are_not_booleans(
    host: HostProcess, flags: dict[str, object]
) -> None:
    digest = upload(host, os.urandom(4096), PAGE_A)  # stored, visible, not ONNX
    reply = host.call("models.load", {"query": {"sha256": digest}, **flags}, context=PAGE_A)
    assert reply["ok"] is False and reply["error"]["code"] == "bad_request", reply
    good = host.call("models.load", {"query": {"sha256": digest}, "compile": True}, context=PAGE_A)
    assert good["ok"] is True, good
