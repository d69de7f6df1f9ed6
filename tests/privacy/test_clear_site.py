"""Clearing a site leaves no trace of it: no row of the index, no file name in the
store names it, and what it compiled is gone even while another site holds the model;
the per-page tables stay bounded (PRIVACY.md, hole 14). Real host, real HTTP server,
real SQLite, real runtime worker.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from privacy.signing import Signer, entry, trusting_config
from support.host import HostProcess, run_cli
from support.httpserver import ModelServer
from support.models import tiny_model
from webmodels.catalogs.keeper import MAX_NAME_REQUESTS

SITE = "http://secret-site.localhost:8000"
FRAME = "http://secret-frame.localhost:8000"
TRACES = ("secret-site", "secret-frame")
A = "http://a.localhost:8000"


def page(top: str, origin: str | None = None) -> dict[str, Any]:
    partition = {"top_site": top, "origin": origin or top}
    return {"partition": partition, "user_activation": True, "trusted": False}


def integrity(data: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def index_rows(home: Path) -> list[str]:
    """Every row of every table of the index, as text."""
    db = sqlite3.connect(f"file:{home / 'store-v2' / 'index.sqlite3'}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return [f"{t}: {row!r}" for t in tables for row in db.execute(f'SELECT * FROM "{t}"')]
    finally:
        db.close()


def traces(home: Path) -> list[str]:
    found = [row for row in index_rows(home) if any(t in row for t in TRACES)]
    files = [str(p) for p in (home / "store-v2").rglob("*")]
    return found + [p for p in files if any(t in p for t in TRACES)]


def upload(host: HostProcess, data: bytes, context: Any) -> None:
    begun = host.result(
        "cos.write.begin", {"sha256": sha(data), "size": len(data)}, context=context
    )
    chunk = {"upload_id": begun["upload_id"], "offset": 0, "data": base64.b64encode(data).decode()}
    host.result("cos.write.chunk", chunk, context=context)
    host.result("cos.write.commit", {"upload_id": begun["upload_id"]}, context=context)


def test_clearing_a_site_removes_every_row_and_file_that_names_it(
    home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    model = tiny_model(tmp_path / "m.onnx", weight_bytes=4096, seed=7).read_bytes()
    common = tiny_model(tmp_path / "c.onnx", seed=8).read_bytes()
    url = model_server.add("/m.onnx", model)
    signer = Signer()
    env = trusting_config(home, signer)
    (home / "config.toml").write_text(
        (home / "config.toml").read_text() + "[sessions]\nbackground_compile = false\n"
    )
    listed = signer.write(home / "list.json", 1, [entry(common, name="test/common")])
    run_cli(home, "commons", "update", str(listed), **env)
    host = HostProcess(home, **env)
    site, frame = page(SITE), page(SITE, FRAME)
    query = {"url": url, "integrity": integrity(model)}
    try:
        host.result("models.load", {"query": query}, context=page(A))  # A holds it too
        # The site: loads (a download job), compiles (its own cache scope), probes a
        # common model (a charge), asks by name (name requests), uploads from a frame,
        # and the user shares the model with it.
        host.result("models.load", {"query": query}, context=site)
        created = host.result("sessions.create", {"sha256": sha(model)}, context=site)
        assert host.result("models.list", {}, context=site)["models"][0]["compiled"] is True
        probe = {"query": {"sha256": sha(common)}}
        assert host.result("models.availability", probe, context=site)
        named = {**query, "name": "someone/thing", "version": "0.3.1"}
        host.result("models.load", {"query": named}, context=frame)
        upload(host, os.urandom(3000), frame)
        host.result("manage.share", {"sha256": sha(model), "top_site": SITE})
        assert traces(home), "the site left rows before it was cleared"

        cleared = host.result("manage.clear_site", {"top_site": SITE})
        assert cleared["references_dropped"] >= 3
        assert traces(home) == []
        # Nor do the index's bytes on disk: deleted rows are overwritten, the log emptied.
        index = home / "store-v2" / "index.sqlite3"
        raw = b"".join(p.read_bytes() for p in index.parent.glob("index.sqlite3*"))
        assert not any(t.encode() in raw for t in TRACES)
        # Its session went with it, and a new visit finds nothing compiled for it.
        gone = host.call(
            "sessions.run", {"session_id": created["session_id"], "feeds": {}}, context=site
        )
        assert gone["error"]["code"] == "session_not_found"
        again = host.result("models.load", {"query": query}, context=site)
        assert again["model"]["compiled"] is False
        assert model_server.transfers("/m.onnx") == 4  # A, the site, its frame, and again
        # A keeps its model.
        seen = host.result(
            "models.availability", {"query": {"sha256": sha(model)}}, context=page(A)
        )
        assert seen == {"availability": "available"}
    finally:
        host.kill()


def test_name_requests_are_bounded_per_partition(
    home: Path, tmp_path: Path, model_server: ModelServer
) -> None:
    """A page that sends a new version string each time keeps only the latest few."""
    model = tiny_model(tmp_path / "m.onnx", seed=9).read_bytes()
    url = model_server.add("/m.onnx", model)
    host = HostProcess(home)
    try:
        for n in range(MAX_NAME_REQUESTS + 8):
            query = {
                "url": url,
                "integrity": integrity(model),
                "name": "x/y",
                "version": f"1.0.{n}",
            }
            host.result("models.load", {"query": query}, context=page(SITE))
        rows = [r for r in index_rows(home) if r.startswith("name_requests:")]
        assert len(rows) == MAX_NAME_REQUESTS
        assert any("1.0.39" in r for r in rows) and not any("'1.0.0'" in r for r in rows)
    finally:
        host.kill()


def test_expired_probe_charges_of_every_site_are_pruned_at_start(
    home: Path, tmp_path: Path
) -> None:
    common = tiny_model(tmp_path / "c.onnx", seed=8).read_bytes()
    signer = Signer()
    env = trusting_config(home, signer, probe_window_hours=0.0001)  # 0.36 s
    listed = signer.write(home / "list.json", 1, [entry(common, name="test/common")])
    run_cli(home, "commons", "update", str(listed), **env)
    host = HostProcess(home, **env)
    probe = {"query": {"sha256": sha(common)}}
    host.result("models.availability", probe, context=page(SITE))
    host.kill()
    assert any(r.startswith("probe_charges:") for r in index_rows(home))
    time.sleep(0.5)  # past the window; the site never probes again
    host = HostProcess(home, **env)
    try:
        host.result("hello")  # the host has started
        assert not any(r.startswith("probe_charges:") for r in index_rows(home))
    finally:
        host.kill()


def test_clearing_a_site_drops_its_uploads_in_progress(home: Path) -> None:
    """An upload the site left open is aborted at once: its temp file goes, and the
    site's next chunk finds no such upload; another site's upload goes on."""
    host = HostProcess(home)
    data = os.urandom(5000)
    try:
        begun = {
            who: host.result(
                "cos.write.begin", {"sha256": sha(data), "size": len(data)}, context=page(who)
            )["upload_id"]
            for who in (SITE, A)
        }
        first = {"offset": 0, "data": base64.b64encode(data[:1000]).decode()}
        for who, upload_id in begun.items():
            host.result("cos.write.chunk", {"upload_id": upload_id, **first}, context=page(who))
        temps = list((home / "store-v2" / "tmp").iterdir())
        assert len(temps) == 2

        host.result("manage.clear_site", {"top_site": SITE})
        assert len(list((home / "store-v2" / "tmp").iterdir())) == 1
        rest = {"offset": 1000, "data": base64.b64encode(data[1000:]).decode()}
        late = host.call("cos.write.chunk", {"upload_id": begun[SITE], **rest}, context=page(SITE))
        assert late["error"]["code"] == "not_found"
        host.result("cos.write.chunk", {"upload_id": begun[A], **rest}, context=page(A))
        host.result("cos.write.commit", {"upload_id": begun[A]}, context=page(A))
    finally:
        host.kill()
