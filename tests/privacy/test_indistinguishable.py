"""Site B cannot tell a model site A obtained from one never stored (docs/design.md#privacy).

Real host processes and a real HTTP model server. Every reply B gets about A's model
is compared, as a JSON frame with only the request id normalised, with the reply to the
same request about a model never stored; B's own load of it is a real, full transfer;
and the compile cache answers B as if A had never compiled anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from privacy.signing import Signer, entry, trusting_config
from support.contexts import PAGE_A, PAGE_B
from support.held import held_in
from support.host import HostProcess, run_cli
from support.httpserver import ModelServer
from support.models import tiny_model

A = "http://a.localhost:8000"
B = "http://b.localhost:8000"
PROBE_ID = 77  # the request id of every compared probe, so frames compare whole


def integrity(data: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def frame_of(host: HostProcess, method: str, params: dict[str, Any], context: Any) -> str:
    """The reply frame, re-serialised in the host's key order, for request id PROBE_ID."""
    host.send({"id": PROBE_ID, "method": method, "params": params, "context": context})
    while True:
        message = host.recv(timeout=60)
        if message.get("id") == PROBE_ID and "event" not in message:
            return json.dumps(message)


def probes(digest: str, url: str, data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The requests a page can make to learn whether ``digest`` is stored."""
    return [
        ("models.availability", {"query": {"sha256": digest}}),
        ("models.availability", {"query": {"url": url, "integrity": integrity(data)}}),
        ("models.availability", {"query": {"url": url, "sha256": digest}}),
        ("cos.lookup", {"sha256": digest}),
        ("models.read", {"sha256": digest, "length": 64}),
        ("models.read", {"sha256": digest, "offset": 100, "length": 1}),
        ("sessions.create", {"sha256": digest}),
        ("models.open", {"sha256": digest}),
        ("models.load", {"query": {"sha256": digest}}),
    ]


def assert_probes_alike(
    host: HostProcess, held: tuple[bytes, str], never: tuple[bytes, str], context: Any
) -> None:
    """Every probe about `held` gets the frame the same probe about `never` gets, and
    none of them names site A or the held model."""
    (held_data, held_url), (never_data, never_url) = held, never
    for (method, held_params), (_, never_params) in zip(
        probes(sha(held_data), held_url, held_data),
        probes(sha(never_data), never_url, never_data),
        strict=True,
    ):
        seen_held = frame_of(host, method, held_params, context)
        seen_never = frame_of(host, method, never_params, context)
        assert seen_held == seen_never, (method, held_params)
        for secret in (A, "a.localhost", sha(held_data)[:12], str(len(held_data))):
            assert secret not in seen_held, (method, secret)


def load(host: HostProcess, url: str, data: bytes, context: Any) -> dict[str, Any]:
    params = {"query": {"url": url, "integrity": integrity(data)}}
    reply = host.call("models.load", params, context=context)
    assert reply["ok"], reply
    model: dict[str, Any] = reply["result"]["model"]
    return model


def blob_files(home: Path) -> list[str]:
    return sorted(held_in(home))


def no_background_compile(home: Path) -> None:
    # The compile-cache checks below must see what a page's own sessions did, not a
    # background compile racing them.
    (home / "no-config.toml").write_text("[sessions]\nbackground_compile = false\n")


@pytest.fixture
def two_models(tmp_path: Path, model_server: ModelServer) -> tuple[bytes, str, bytes, str]:
    """A's model and a never-stored one of the same size, both served."""
    held = tiny_model(tmp_path / "held.onnx", weight_bytes=8192, seed=1).read_bytes()
    never = tiny_model(tmp_path / "never.onnx", weight_bytes=8192, seed=2).read_bytes()
    assert len(held) == len(never) and held != never
    return held, model_server.add("/held.onnx", held), never, model_server.add("/n.onnx", never)


def test_probes_of_a_held_model_answer_as_for_a_never_stored_one(
    home: Path, model_server: ModelServer, two_models: tuple[bytes, str, bytes, str]
) -> None:
    held, held_url, never, never_url = two_models
    no_background_compile(home)
    host = HostProcess(home)
    try:
        load(host, held_url, held, PAGE_A)
        # A's own session compiles it: the compile cache now holds it.
        created = host.result("sessions.create", {"sha256": sha(held)}, context=PAGE_A)
        host.result("sessions.release", {"session_id": created["session_id"]}, context=PAGE_A)
        assert_probes_alike(host, (held, held_url), (never, never_url), PAGE_B)
        assert model_server.transfers("/held.onnx") == 1  # probing fetched nothing
        assert model_server.transfers("/n.onnx") == 0
    finally:
        host.kill()


def test_a_load_by_b_is_a_real_full_transfer(
    home: Path, model_server: ModelServer, two_models: tuple[bytes, str, bytes, str]
) -> None:
    held, held_url, _, _ = two_models
    host = HostProcess(home)
    try:
        load(host, held_url, held, PAGE_A)
        assert model_server.transfers("/held.onnx") == 1
        before = model_server.bytes_sent("/held.onnx")
        model = load(host, held_url, held, PAGE_B)
        assert model["sha256"] == sha(held)
        assert model_server.transfers("/held.onnx") == 2  # the network saw B's download
        assert model_server.bytes_sent("/held.onnx") - before == len(held)
        seen = host.result("models.availability", {"query": {"sha256": sha(held)}}, context=PAGE_B)
        assert seen == {"availability": "available"}
        read = host.result("models.read", {"sha256": sha(held), "length": 64}, context=PAGE_B)
        assert base64.b64decode(read["data"]) == held[:64]
        assert len(blob_files(home)) == 1  # and the disk holds one copy
    finally:
        host.kill()


def test_listing_and_hello_reveal_nothing_of_other_sites(
    home: Path, model_server: ModelServer, two_models: tuple[bytes, str, bytes, str]
) -> None:
    held, held_url, _, _ = two_models
    host = HostProcess(home)
    try:
        empty_list = frame_of(host, "models.list", {}, PAGE_B)
        hello_before = host.result("hello", {}, context=PAGE_B)
        load(host, held_url, held, PAGE_A)
        assert frame_of(host, "models.list", {}, PAGE_B) == empty_list
        assert json.loads(empty_list)["result"] == {"models": [], "next_cursor": None}
        hello_after = host.result("hello", {}, context=PAGE_B)
        for key in ("providers", "providers_pending"):  # the probe may finish meanwhile
            hello_after[key] = hello_before[key]
        assert hello_after == hello_before
        hello_a = host.result("hello", {}, context=PAGE_A)
        for key in ("providers", "providers_pending"):
            hello_a[key] = hello_before[key]
        assert hello_a == hello_after
        assert [m["sha256"] for m in host.result("models.list", {}, context=PAGE_A)["models"]] == [
            sha(held)
        ]
        # Calls about other partitions' things: answers carry nothing of A.
        for method, params in [
            ("models.cancel", {"request_id": 1}),
            ("sessions.run", {"session_id": "0" * 32, "feeds": {}}),
            ("sessions.release", {"session_id": "0" * 32}),
            ("manage.list", {}),
            ("manage.clear_site", {"top_site": "http://c.localhost:8000"}),
        ]:
            text = frame_of(host, method, params, PAGE_B)
            assert sha(held)[:12] not in text and "a.localhost" not in text, text
    finally:
        host.kill()


def test_the_compile_cache_does_not_tell_b_that_a_compiled(
    home: Path, model_server: ModelServer, two_models: tuple[bytes, str, bytes, str]
) -> None:
    held, held_url, never, never_url = two_models
    no_background_compile(home)
    host = HostProcess(home)
    try:
        load(host, held_url, held, PAGE_A)
        first_a = host.result("sessions.create", {"sha256": sha(held)}, context=PAGE_A)
        assert first_a["compiled_cache_hit"] is False
        again_a = host.result("sessions.create", {"sha256": sha(held)}, context=PAGE_A)
        assert again_a["compiled_cache_hit"] is True  # A's own cache works
        [info_a] = host.result("models.list", {}, context=PAGE_A)["models"]
        assert info_a["compiled"] is True
        # B obtains both models the same way: A's and one nobody had.
        info_held = load(host, held_url, held, PAGE_B)
        info_never = load(host, never_url, never, PAGE_B)
        assert info_held["compiled"] == info_never["compiled"] is False
        first_held = host.result("sessions.create", {"sha256": sha(held)}, context=PAGE_B)
        first_never = host.result("sessions.create", {"sha256": sha(never)}, context=PAGE_B)
        assert first_held["compiled_cache_hit"] == first_never["compiled_cache_hit"] is False
        # After its own first session, B gets its own hits.
        again_b = host.result("sessions.create", {"sha256": sha(held)}, context=PAGE_B)
        assert again_b["compiled_cache_hit"] is True
        listed = {
            m["sha256"]: m["compiled"]
            for m in host.result("models.list", {}, context=PAGE_B)["models"]
        }
        assert listed == {sha(held): True, sha(never): True}
    finally:
        host.kill()


def test_error_messages_name_no_other_site(
    home: Path, model_server: ModelServer, two_models: tuple[bytes, str, bytes, str]
) -> None:
    held, held_url, _, _ = two_models
    host = HostProcess(home)
    try:
        load(host, held_url, held, PAGE_A)
        # B asks for A's model with a wrong URL and with a bad integrity: plain errors.
        missing = model_server.url("/missing.onnx")
        for params in [
            {"query": {"url": missing, "integrity": integrity(held)}},
            {"query": {"url": held_url, "sha256": "ab" * 32}},
        ]:
            text = frame_of(host, "models.load", params, PAGE_B)
            assert json.loads(text)["ok"] is False
            assert "a.localhost" not in text, text
    finally:
        host.kill()


def page(site: str) -> dict[str, Any]:
    return {"partition": {"top_site": site, "origin": site}, "user_activation": True}


def test_a_share_with_one_site_tells_the_others_nothing(
    home: Path, model_server: ModelServer, two_models: tuple[bytes, str, bytes, str]
) -> None:
    held, held_url, never, never_url = two_models
    no_background_compile(home)
    host = HostProcess(home)
    try:
        load(host, held_url, held, PAGE_A)
        host.result("sessions.create", {"sha256": sha(held)}, context=PAGE_A)
        c = "http://c.localhost:8000"
        shared = host.result("manage.share", {"sha256": sha(held), "top_site": c})
        assert shared["model"]["shared_with"] == [c]
        # C sees it without a transfer (the user said so) ...
        seen = host.result("models.availability", {"query": {"sha256": sha(held)}}, context=page(c))
        assert seen == {"availability": "available"}
        # ... with its own compile cache: a share is not a common model.
        created = host.result("sessions.create", {"sha256": sha(held)}, context=page(c))
        assert created["compiled_cache_hit"] is False
        # B, not shared with, gets exactly what it gets for a model never stored.
        assert_probes_alike(host, (held, held_url), (never, never_url), PAGE_B)
        assert model_server.transfers("/held.onnx") == 1
    finally:
        host.kill()


def common_host(home: Path, listed: list[bytes], **settings: object) -> HostProcess:
    """A host trusting a fresh commons list of `listed`, with background compiles off
    (the compile-cache checks must see what pages' sessions did)."""
    signer = Signer()
    env = trusting_config(home, signer, **settings)
    config = Path(env["WEBMODELS_CONFIG"])
    config.write_text(config.read_text() + "[sessions]\nbackground_compile = false\n")
    entries = [entry(data, name=f"test/common-{i}") for i, data in enumerate(listed)]
    run_cli(home, "commons", "update", str(signer.write(home / "list.json", 1, entries)), **env)
    return HostProcess(home, **env)


def test_a_common_model_over_the_budget_answers_as_a_listed_one_never_stored(
    home: Path,
    tmp_path: Path,
    model_server: ModelServer,
    two_models: tuple[bytes, str, bytes, str],
) -> None:
    """Both on the commons list, one stored by A and one never stored: once B's site has
    spent its probe budget, every probe of either gets the same frame."""
    held, held_url, never, never_url = two_models
    spent = tiny_model(tmp_path / "spent.onnx", seed=3).read_bytes()
    host = common_host(home, [held, never, spent], probe_budget=1)
    try:
        load(host, held_url, held, PAGE_A)
        seen = host.result("models.availability", {"query": {"sha256": sha(spent)}}, context=PAGE_B)
        assert seen == {"availability": "unavailable"}  # a miss costs B its one probe
        assert_probes_alike(host, (held, held_url), (never, never_url), PAGE_B)
        # Within its budget, a site sees the stored common model at once (by design).
        c = page("http://c.localhost:8000")
        seen = host.result("models.availability", {"query": {"sha256": sha(held)}}, context=c)
        assert seen == {"availability": "available"}
    finally:
        host.kill()


def test_common_models_share_one_compile_cache(
    home: Path, model_server: ModelServer, two_models: tuple[bytes, str, bytes, str]
) -> None:
    """A common model is visible to every site by design, so its compiled graph is
    shared: the second site's first session is a cache hit. Models that are not common
    keep a cache per partition (test_the_compile_cache_does_not_tell_b_that_a_compiled)."""
    held, held_url, _, _ = two_models
    host = common_host(home, [held])
    try:
        load(host, held_url, held, PAGE_A)
        first = host.result("sessions.create", {"sha256": sha(held)}, context=PAGE_A)
        assert first["compiled_cache_hit"] is False
        loaded = host.result("models.load", {"query": {"sha256": sha(held)}}, context=PAGE_B)
        assert loaded["model"]["compiled"] is True
        created = host.result("sessions.create", {"sha256": sha(held)}, context=PAGE_B)
        assert created["compiled_cache_hit"] is True
        assert model_server.transfers("/held.onnx") == 1  # and B fetched nothing
    finally:
        host.kill()


def test_a_load_reply_describes_the_model_alike_whoever_holds_it(
    home: Path,
    tmp_path: Path,
    model_server: ModelServer,
    two_models: tuple[bytes, str, bytes, str],
) -> None:
    """The user imported A's model under a private label: B's download of it must not
    show that label, nor that the stored copy was imported."""
    held, held_url, never, never_url = two_models
    path = tmp_path / "imported.onnx"
    path.write_bytes(held)
    run_cli(home, "import", str(path), "--name", "secret/label", "--model-version", "9.9.9")
    host = HostProcess(home)
    try:
        got_held = load(host, held_url, held, PAGE_B)
        got_never = load(host, never_url, never, PAGE_B)
        for key in ("name", "version", "source", "substituted", "compiled"):
            assert got_held[key] == got_never[key], key
        assert (got_held["name"], got_held["source"]) == (None, "downloaded")
        listed = host.result("models.list", {}, context=PAGE_B)["models"]
        assert all(m["name"] is None and m["source"] == "downloaded" for m in listed)
        mine = host.result("manage.list")["models"]  # the user still sees the label
        assert [(m["name"], m["source"]) for m in mine if m["sha256"] == sha(held)] == [
            ("secret/label", "imported")
        ]
    finally:
        host.kill()
