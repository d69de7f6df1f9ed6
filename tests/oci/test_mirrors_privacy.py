"""A page cannot tell whether a configured mirror served its load: the load through
the registry mirror is a real transfer for the page's partition, and every frame the
page gets for it (progress events and the reply, ids normalised) is byte-identical to
those of the same load served by the model's own server (PRIVACY.md, mirrors)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from oci.mirror_proxy import registry_proxy
from oci.test_mirrors import PAGE, integrity, put_blob, sha, with_mirrors
from support.held import read_held
from support.host import HostProcess
from support.httpserver import ModelServer
from support.registry import Registry

LOAD_ID = 91
_IDS = re.compile(r'"(job|job_id|session_id|upload_id)": "[^"]*"')


def page_frames(host: HostProcess, url: str, data: bytes) -> list[str]:
    """Every frame the page gets for one load, in order, ids normalised."""
    query = {"url": url, "integrity": integrity(data)}
    host.send({"id": LOAD_ID, "method": "models.load", "params": {"query": query}, "context": PAGE})
    frames: list[Any] = []
    while True:
        message = host.recv(timeout=60)
        if message.get("id") != LOAD_ID:
            continue
        frames.append(message)
        if "event" not in message:
            return [_IDS.sub(lambda m: f'"{m.group(1)}": "<id>"', json.dumps(f)) for f in frames]


def test_a_page_cannot_tell_whether_a_mirror_served_its_load(
    registry: Registry, tmp_path: Path, model_server: ModelServer
) -> None:
    data = os.urandom(600_000)
    put_blob(registry.host, data)
    url = model_server.add("/model.bin", data)
    seen: dict[str, list[str]] = {}
    with registry_proxy(registry.host) as (proxy, state):
        for name, mirrors in (("origin", ()), ("mirror", (f"oci://{proxy}/models",))):
            home = tmp_path / name
            host = HostProcess(home, **with_mirrors(home, *mirrors))
            try:
                seen[name] = page_frames(host, url, data)
            finally:
                host.close()
            assert read_held(home, sha(data)) == data
    assert model_server.transfers("/model.bin") == 1  # the origin served only one
    assert [path for path, _ in state.seen] == [f"/v2/models/blobs/sha256:{sha(data)}"]
    assert '"ok": true' in seen["mirror"][-1]
    assert seen["mirror"] == seen["origin"]
    print(f"{len(seen['mirror'])} frames, identical")
