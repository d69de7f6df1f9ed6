"""The compile cache's keys and its derived blobs in a real store: hidden from model
listings, kept by gc while their model exists, removed with it."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from support.models import tiny_model
from webmodels.config import Config
from webmodels.digest import Digest
from webmodels.runtime.compile_cache import CacheKey, CompileCache, cpu_fingerprint
from webmodels.store.gc import execute_gc, plan_gc
from webmodels.store.store import Store

INTEL = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\nprocessor\t: 1\nflags\t: fpu\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd sve\n"


def test_cpu_fingerprint_follows_the_instruction_set() -> None:
    base = cpu_fingerprint(INTEL, "x86_64")
    assert base == cpu_fingerprint(INTEL.replace("sse2 avx2", "avx2 sse2"), "x86_64")
    assert base != cpu_fingerprint(INTEL.replace(" avx512f", ""), "x86_64")
    assert cpu_fingerprint(ARM, "aarch64") != cpu_fingerprint(None, "aarch64")
    assert len(base) == 16


def key(digest: Digest, **changes: object) -> CacheKey:
    base = CacheKey(
        source=digest,
        ort_version="1.31.1",
        provider="CPUExecutionProvider",
        level="all",
        cpu="c0ffee",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_every_part_of_the_key_changes_it() -> None:
    source = Digest("a" * 64)
    ids = {key(source).id}
    for change in [
        {"ort_version": "1.32.0"},
        {"provider": "CUDAExecutionProvider"},
        {"level": "basic"},
        {"cpu": "beef"},
        {"scope": "https://a.example x"},
        {"provider_options": {"device_id": "1"}},
        {"source": Digest("b" * 64)},
    ]:
        ids.add(key(source, **change).id)
    assert len(ids) == 8
    assert key(source, provider="TensorrtExecutionProvider").transform == "ort-ep-context"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """Files kept whole (`[store] segments = false`): these tests look at the cache's
    paths; the same with segments, tests/store/segments/test_compile_cache_segments.py."""
    config = Config(home=tmp_path / "home", log_dir=tmp_path / "logs", store_segments=False)
    return Store.open(config)


def compiled_into(cache: CompileCache, k: CacheKey, *, weights: bytes | None = b"w" * 4096) -> None:
    folder = cache.new_work_dir()
    (folder / "model.onnx").write_bytes(b"graph of " + k.id.encode())
    if weights is not None:
        (folder / "weights.bin").write_bytes(weights)
    assert cache.save(k, folder, "model.onnx", "weights.bin" if weights is not None else None)
    assert list(folder.iterdir()) == []  # renamed into blobs/, not copied


def test_saved_graphs_are_found_hidden_and_kept_while_their_model_exists(
    store: Store, tmp_path: Path
) -> None:
    model = store.import_file(tiny_model(tmp_path / "m.onnx")).model
    cache = CompileCache(store)
    k = key(model.digest)
    assert cache.lookup(k) is None and not cache.compiled(k)
    compiled_into(cache, k)
    found = cache.lookup(k)
    assert found is not None and found.weights is not None
    assert found.graph.path.read_bytes() == b"graph of " + k.id.encode()
    assert cache.compiled(k)
    assert [r.digest for r in store.list_models()] == [model.digest]
    assert store.stats().physical_bytes == model.size  # what models take, as before
    assert execute_gc(store, plan_gc(store)).removed == ()  # protected by their reference
    assert store.delete(model.digest) > model.size
    assert list(store.files.iter_blobs()) == []
    assert cache.lookup(k) is None


def test_a_missing_blob_is_a_miss_and_the_entry_is_dropped(store: Store, tmp_path: Path) -> None:
    model = store.import_file(tiny_model(tmp_path / "m.onnx")).model
    cache = CompileCache(store)
    k = key(model.digest)
    compiled_into(cache, k, weights=None)
    found = cache.lookup(k)
    assert found is not None and found.weights is None
    found.graph.path.unlink()
    assert cache.lookup(k) is None and not cache.compiled(k)


def test_nothing_is_saved_for_a_model_that_is_gone(store: Store, tmp_path: Path) -> None:
    cache = CompileCache(store)
    folder = cache.new_work_dir()
    (folder / "model.onnx").write_bytes(b"graph")
    assert not cache.save(key(Digest("c" * 64)), folder, "model.onnx", None)
    assert list(store.files.iter_blobs()) == []


def test_pre_installed_models_keep_their_graphs_until_unlisted(tmp_path: Path) -> None:
    folder = tmp_path / "pre"
    tiny_model(folder / "m.onnx")
    (folder / "models.json").write_text(json.dumps({"version": 1, "models": [{"file": "m.onnx"}]}))
    config = Config(
        home=tmp_path / "home",
        log_dir=tmp_path / "logs",
        preinstalled_dirs=(folder,),
        store_segments=False,  # as the `store` fixture
    )
    store = Store.open(config)
    [model] = store.list_models()
    cache = CompileCache(store)
    k = key(model.digest)
    compiled_into(cache, k)
    (folder / "models.json").write_text(json.dumps({"version": 1, "models": []}))
    store.refresh_preinstalled()  # the model left its folder: a trigger drops the references
    assert not cache.compiled(k)
    assert len(execute_gc(store, plan_gc(store)).removed) == 2
    assert list(store.files.iter_blobs()) == []


def test_failures_are_remembered_and_prune_drops_orphans(store: Store, tmp_path: Path) -> None:
    model = store.import_file(tiny_model(tmp_path / "m.onnx")).model
    cache = CompileCache(store)
    k = key(model.digest)
    cache.record_failure(k, "ONNX Runtime: no kernel")
    assert cache.failed(k) and not cache.compiled(k) and cache.lookup(k) is None
    compiled_into(cache, k)  # a later success replaces the failure
    assert cache.compiled(k) and not cache.failed(k)
    with sqlite3.connect(store.index.path) as db:  # as if the source vanished unnoticed
        db.execute(
            "INSERT INTO derived (key, source, transform, details, created_at) "
            "VALUES ('x', ?, 't', '{}', 0)",
            ("d" * 64,),
        )
    assert cache.prune() == 1
    assert cache.compiled(k)
