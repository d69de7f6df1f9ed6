"""`models.load` checks a page's `representation` before any work (hostile input is a
`bad_request` naming the field, even for a stored model) and logs only the facts the
choice used, never the device's whole report."""

from __future__ import annotations

import os

from methods.test_sessions import upload
from support.contexts import PAGE_A
from support.host import HostProcess

FEATURES = ["float32-filterable", "subgroups", "timestamp-query"]


def test_load_checks_the_representation_and_logs_the_choice(host: HostProcess) -> None:
    digest = upload(host, os.urandom(4096), PAGE_A)  # stored, visible
    query = {"sha256": digest}
    hostile = {"for": "webgpu", "device": {"webgpu": {"features": ["x"] * 1000}}}

    refused = host.call("models.load", {"query": query, "representation": hostile}, context=PAGE_A)
    asked = {"for": "webgpu", "device": {"webgpu": {"features": FEATURES}}}
    given = host.call("models.load", {"query": query, "representation": asked}, context=PAGE_A)

    assert refused["ok"] is False, refused
    assert refused["error"]["code"] == "bad_request"
    assert refused["error"]["details"] == {"field": "representation.device.webgpu.features"}
    assert given["ok"] is True, given
    log = host.logged()
    assert "for webgpu, device: webgpu shader-f16 no -> fp32 onnx opset source" in log
    assert "subgroups" not in log
