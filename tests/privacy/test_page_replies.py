"""Every reply that describes a model to a page is the same whoever else holds it.

The user imported A's model under a private label, site A obtained it and compiled it.
Site B then uploads, loads, lists, opens and creates sessions of it, and of a model
never stored; each reply frame, with only the hash and one-time ids normalised, must be
byte-identical between the two (real host, real HTTP server; PRIVACY.md, hole 8).
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from privacy.test_indistinguishable import integrity, no_background_compile, page, sha
from support.host import HostProcess, run_cli
from support.httpserver import ModelServer
from support.models import tiny_model

A = "http://a.localhost:8000"
SECRETS = ("alice/secret-model", "9.9.9", "imported", "a.localhost")
_IDS = re.compile(r'"(upload_id|session_id|url)": "[^"]*"')


def normalised(reply: Any, data: bytes) -> str:
    text = json.dumps({**reply, "id": None}).replace(sha(data), "<sha256>")
    return _IDS.sub(lambda m: f'"{m.group(1)}": "<id>"', text)


def upload(host: HostProcess, data: bytes, context: Any) -> Any:
    begun = host.result(
        "cos.write.begin", {"sha256": sha(data), "size": len(data)}, context=context
    )
    chunk = {"upload_id": begun["upload_id"], "offset": 0, "data": base64.b64encode(data).decode()}
    host.result("cos.write.chunk", chunk, context=context)
    return host.call("cos.write.commit", {"upload_id": begun["upload_id"]}, context=context)


def replies(host: HostProcess, data: bytes, url: str, site: str) -> dict[str, str]:
    """What a fresh site sees of `data` through every reply that carries a model."""
    seen: dict[str, str] = {}

    def ask(name: str, method: str, params: dict[str, Any], context: Any) -> None:
        seen[name] = normalised(host.call(method, params, context=context), data)

    uploader = page(f"http://up-{site}.localhost:8000")
    seen["cos.write.commit"] = normalised(upload(host, data, uploader), data)
    ask("cos.lookup", "cos.lookup", {"sha256": sha(data)}, uploader)
    loader = page(f"http://load-{site}.localhost:8000")
    query = {"url": url, "integrity": integrity(data)}
    ask("models.load (url)", "models.load", {"query": query}, loader)
    ask("models.load (hash)", "models.load", {"query": {"sha256": sha(data)}}, loader)
    ask("models.availability", "models.availability", {"query": {"sha256": sha(data)}}, loader)
    ask("models.list", "models.list", {}, loader)
    ask("models.open", "models.open", {"sha256": sha(data)}, loader)
    ask("sessions.create", "sessions.create", {"sha256": sha(data)}, loader)
    ask("models.list (after a session)", "models.list", {}, loader)
    return seen


def test_every_model_reply_is_alike_for_a_labelled_held_model_and_a_never_stored_one(
    home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    held = tiny_model(tmp_path / "held.onnx", weight_bytes=8192, seed=1).read_bytes()
    never = tiny_model(tmp_path / "never.onnx", weight_bytes=8192, seed=2).read_bytes()
    held_url, never_url = model_server.add("/held.onnx", held), model_server.add("/n.onnx", never)
    no_background_compile(home)
    label = ["--name", "alice/secret-model", "--model-version", "9.9.9"]
    run_cli(home, "import", str(tmp_path / "held.onnx"), *label)
    host = HostProcess(home)
    try:
        own = host.result(
            "models.load",
            {"query": {"url": held_url, "integrity": integrity(held)}},
            context=page(A),
        )
        assert own["model"]["sha256"] == sha(held)
        host.result("sessions.create", {"sha256": sha(held)}, context=page(A))  # A compiled it
        got_held = replies(host, held, held_url, "held")
        got_never = replies(host, never, never_url, "never")
        for name, frame in got_held.items():
            assert frame == got_never[name], name
            assert json.loads(frame)["ok"] is True, (name, frame)
            for secret in SECRETS:
                assert secret not in frame, (name, secret, frame)
        committed = json.loads(got_held["cos.write.commit"])["result"]["model"]
        assert (committed["name"], committed["source"]) == (None, "downloaded")
        # The user still sees the label in the own views.
        mine = host.result("manage.list")["models"]
        assert [(m["name"], m["source"]) for m in mine if m["sha256"] == sha(held)] == [
            ("alice/secret-model", "imported")
        ]
    finally:
        host.kill()
