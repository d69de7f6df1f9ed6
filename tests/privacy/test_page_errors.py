"""What a page learns from an error: a code and that code's fixed meaning, never a path,
an exception's text or a figure it could not know itself (PRIVACY.md, hole 11).

The dispatcher is the one door: tested alone, then in a real host built in this process
(real store, real runtime worker, real ONNX Runtime). A file deleted between the host's
check and the worker's read cannot be timed from outside, so these tests delete it from
a wrapper around the real `Store.locate` / `CompileCache.lookup`, right after the
host's own check: the window, forced open.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from support.models import tiny_model
from webmodels.app import Host, build_dispatcher, build_host
from webmodels.config import Config
from webmodels.context import RequestContext
from webmodels.digest import Digest
from webmodels.dispatch import Call, Dispatcher
from webmodels.errors import ERROR_CODES, HostError
from webmodels.protocol.envelope import Request
from webmodels.runtime.compile_cache import CachedGraph, CacheKey
from webmodels.store.records import Location

SITE = "https://a.example"
PAGE = RequestContext.parse({"partition": {"top_site": SITE, "origin": SITE}})
TRUSTED = RequestContext.trusted_local()
SECRET_PATH = "/home/alice/.local/share/webmodels/store-v2/blobs/sha256/73/73cd"


def ask(dispatcher: Dispatcher, method: str, context: RequestContext, **params: Any) -> Any:
    return dispatcher.handle(Request(id=1, method=method, params=params, context=None), context)


def test_a_page_gets_the_code_and_its_meaning_the_cli_the_whole_error() -> None:
    dispatcher = Dispatcher()
    raised = {
        "internal": HostError("internal", f"runtime worker: FileNotFoundError: '{SECRET_PATH}'"),
        "integrity_mismatch": HostError(
            "integrity_mismatch", "expected SHA-256 aa, got bb", expected="aa", actual="bb"
        ),
        "busy": HostError("busy", "the host has 16 sessions open", limit=16),
        "bad_request": HostError("bad_request", f"cannot read {SECRET_PATH}", field="feeds.x"),
        "user_activation_required": HostError("user_activation_required", "1000 B", limit=1000),
    }

    def fail(call: Call) -> Mapping[str, Any]:
        raise raised[call.params.string("code")]

    def later(call: Call) -> Future[Mapping[str, Any]]:
        settled: Future[Mapping[str, Any]] = Future()
        settled.set_exception(raised["internal"])
        return settled

    dispatcher.add("test.fail", fail)
    dispatcher.add("test.later", later)
    kept = {"bad_request": {"field": "feeds.x"}, "user_activation_required": {"limit": 1000}}
    for code, error in raised.items():
        seen = ask(dispatcher, "test.fail", PAGE, code=code)["error"]
        assert seen == {"code": code, "message": ERROR_CODES[code], "details": kept.get(code, {})}
        full = ask(dispatcher, "test.fail", TRUSTED, code=code)["error"]
        assert full == error.to_wire()  # the CLI and the popup: everything
    deferred = ask(dispatcher, "test.later", PAGE)["error"]  # a download's late failure
    assert deferred == {"code": "internal", "message": ERROR_CODES["internal"], "details": {}}


def build(tmp_path: Path, *, segments: bool) -> Iterator[tuple[Host, Dispatcher, Digest]]:
    config = Config(
        home=tmp_path / "home",
        log_dir=tmp_path / "logs",
        extra={"sessions": {"background_compile": False}},
        store_segments=segments,
    )
    built = build_host(config)
    model = tiny_model(tmp_path / "m.onnx", weight_bytes=4096, seed=5)
    digest = built.store.import_file(model).model.digest
    assert PAGE.partition is not None
    built.store.record_use(digest, PAGE.partition.key)  # the page's own model
    yield built, build_dispatcher(built), digest
    built.close()


@pytest.fixture
def host(tmp_path: Path) -> Iterator[tuple[Host, Dispatcher, Digest]]:
    """Files kept whole: the window is forced open on the whole file's path
    (`Store.locate`); the same with segments: `segmented_host`."""
    yield from build(tmp_path, segments=False)


@pytest.fixture
def segmented_host(tmp_path: Path) -> Iterator[tuple[Host, Dispatcher, Digest]]:
    yield from build(tmp_path, segments=True)


def delete_after_locate(host: Host, *, instead: Path | None = None) -> None:
    """The host checks the blob, then it is deleted (gc, the user, another host) before
    the worker or the reader opens it; or `instead` is what the reader finds there."""
    real = host.store.locate

    def locate(digest: Digest) -> Location:
        found = real(digest)
        found.path.unlink()
        return found if instead is None else replace(found, path=instead)

    host.store.locate = locate  # type: ignore[method-assign]


def assert_nothing_leaks(reply: Any, host: Host) -> None:
    text = json.dumps(reply)
    for secret in (str(host.config.home), "Error", "Errno", "blobs", "sha256/"):
        assert secret not in text, (secret, text)


@pytest.mark.parametrize(
    ("method", "params"),
    [("sessions.create", {}), ("models.read", {"length": 16})],
)
def test_a_model_deleted_after_the_check_is_not_found(
    host: tuple[Host, Dispatcher, Digest], method: str, params: dict[str, Any]
) -> None:
    built, dispatcher, digest = host
    delete_after_locate(built)
    reply = ask(dispatcher, method, PAGE, sha256=digest.hex, **params)
    assert reply["ok"] is False and reply["error"]["code"] == "not_found", reply
    assert_nothing_leaks(reply, built)


@pytest.mark.parametrize(
    ("method", "params"),
    [("sessions.create", {}), ("models.read", {"length": 1 << 20})],
)
def test_a_model_whose_segments_are_deleted_after_the_check_is_not_found(
    segmented_host: tuple[Host, Dispatcher, Digest], method: str, params: dict[str, Any]
) -> None:
    """The store found the file's recipe servable, then its segment files went (gc,
    the user, a failing disk) before they were read."""
    built, dispatcher, digest = segmented_host
    store = built.store
    recipe = store.recipe_of(digest)
    assert recipe is not None and recipe.segments  # kept as segments
    real = store.recipe_of

    def recipe_of(wanted: Digest) -> Any:
        found = real(wanted)
        for segment in found.segments if found is not None else ():
            store.segmented.store.locate(segment)[0].unlink(missing_ok=True)
        return found

    store.recipe_of = recipe_of  # type: ignore[method-assign]
    reply = ask(dispatcher, method, PAGE, sha256=digest.hex, **params)
    assert reply["ok"] is False and reply["error"]["code"] == "not_found", reply
    assert_nothing_leaks(reply, built)
    assert "segments-v1" not in json.dumps(reply)


def test_an_internal_error_with_a_path_reaches_the_page_without_it(
    host: tuple[Host, Dispatcher, Digest], tmp_path: Path
) -> None:
    """The worker trips over a folder where the model should be: an unexpected error
    whose text names the store's path."""
    built, dispatcher, digest = host
    folder = tmp_path / "home" / "a-folder-not-a-model"
    folder.mkdir()
    delete_after_locate(built, instead=folder)
    reply = ask(dispatcher, "sessions.create", PAGE, sha256=digest.hex)
    assert reply["error"] == {
        "code": "internal",
        "message": ERROR_CODES["internal"],
        "details": {},
    }
    assert_nothing_leaks(reply, built)
    assert str(folder) not in json.dumps(reply)


def test_a_removed_cached_graph_is_compiled_again(host: tuple[Host, Dispatcher, Digest]) -> None:
    built, dispatcher, digest = host
    first = ask(dispatcher, "sessions.create", PAGE, sha256=digest.hex)["result"]
    assert first["compiled_cache_hit"] is False
    ask(dispatcher, "sessions.release", PAGE, session_id=first["session_id"])
    cache = built.sessions.loader.cache
    real = cache.lookup
    removed: list[Path] = []

    def lookup(key: CacheKey) -> CachedGraph | None:
        found = real(key)
        if found is not None:  # found and checked; then gc (or the user) removes it
            found.graph.path.unlink()
            removed.append(found.graph.path)
        return found

    cache.lookup = lookup  # type: ignore[method-assign]
    again = ask(dispatcher, "sessions.create", PAGE, sha256=digest.hex)
    assert again["ok"] is True, again
    assert again["result"]["compiled_cache_hit"] is False  # compiled afresh
    assert removed, "the cache had the graph"
