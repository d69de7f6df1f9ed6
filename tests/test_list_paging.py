"""The list methods answer in pages, so a store of 10,000 files lists at all (before,
2,400 files made `manage.list` answer `too_large` and the popup showed nothing).

Real host subprocesses on a store built by `support.big_store`; every frame the host
writes is checked against the 1 MiB limit by `HostProcess`. Figures are printed and
asserted only against generous bounds (3x the issue's targets)."""

from __future__ import annotations

import base64
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.big_store import BigStore, build_store
from support.catalogs import CatalogSigner, entry
from support.host import HostProcess, run_cli

A = "http://a.localhost:8000"
B = "http://b.localhost:8000"
KEY_A, KEY_B = f"{A} {A}", f"{B} {B}"


def page(site: str) -> dict[str, Any]:
    return {"partition": {"top_site": site, "origin": site}, "trusted": False}


def pages(host: HostProcess, method: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Each page's result, following `next_cursor` to the end."""
    context = params.pop("context", None)
    extra = {"context": context} if context else {}
    cursor = None
    while True:
        asked = {**params, **({"cursor": cursor} if cursor else {})}
        result = host.result(method, asked, **extra)
        yield result
        cursor = result["next_cursor"]
        if cursor is None:
            return


def _cursor_text(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _cursor(kind: str, *key: str) -> str:
    return _cursor_text([kind, *key])


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> BigStore:
    home = tmp_path_factory.mktemp("big") / "home"
    started = time.perf_counter()
    built = build_store(home / "store-v2", 10_000, sites=(KEY_A, KEY_B), blob_files=False)
    print(f"\nbuilt a 10,000-file store in {time.perf_counter() - started:.2f} s")
    return built


@pytest.fixture(scope="module")
def host(big: BigStore) -> Iterator[HostProcess]:
    started = time.perf_counter()
    proc = HostProcess(big.root.parent)
    proc.result("hello")
    print(
        f"\nhost start to hello with 10,000 files: {(time.perf_counter() - started) * 1000:.0f} ms"
    )
    yield proc
    proc.close()


def test_manage_list_pages_through_10000_files_each_once_in_label_order(
    host: HostProcess, big: BigStore
) -> None:
    started = time.perf_counter()
    first = host.result("manage.list")
    first_s = time.perf_counter() - started
    seen = [m["sha256"] for m in first["models"]]
    for result in pages(host, "manage.list", "models", cursor=first["next_cursor"]):
        seen += [m["sha256"] for m in result["models"]]
    all_s = time.perf_counter() - started
    print(f"manage.list first page {first_s * 1000:.0f} ms, all pages {all_s:.2f} s")
    print(f"largest frame {max(host.sizes)} bytes")
    assert len(first["models"]) == 100 and sorted(seen) == sorted(big.digests)
    labels = [(big.names[big.digests.index(s)], s) for s in seen[:600]]
    assert labels == sorted(labels)  # a model's files side by side
    assert first_s < 3.0 and max(host.sizes) < 1024 * 1024


def test_a_page_lists_only_its_own_files_page_by_page(host: HostProcess, big: BigStore) -> None:
    seen = []
    for result in pages(host, "models.list", "models", limit=500, context=page(A)):
        assert len(result["models"]) <= 500
        seen += [m["sha256"] for m in result["models"]]
    assert sorted(seen) == sorted(big.of_site(KEY_A, (KEY_A, KEY_B))) and seen == sorted(seen)


def test_a_forged_cursor_never_shows_another_sites_file(host: HostProcess, big: BigStore) -> None:
    b_files = big.of_site(KEY_B, (KEY_A, KEY_B))
    just_before = format(int(b_files[0], 16) - 1, "064x")
    forged = _cursor("models.list", just_before)
    result = host.result("models.list", {"cursor": forged, "limit": 5}, context=page(A))
    assert result["models"] and not set(b_files) & {m["sha256"] for m in result["models"]}


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 !",
        "x" * 5000,
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
        _cursor_text(["manage.list", 1, [], None]),
        12,
        ["manage.list"],
    ],
)
def test_a_hostile_cursor_is_a_bad_request(host: HostProcess, cursor: Any) -> None:
    lists = ("manage.list", "manage.jobs", "models.list", "manage.catalogs.list")
    for method in (*lists, "manage.commons.list"):
        context = {"context": page(A)} if method == "models.list" else {}
        reply = host.call(method, {"cursor": cursor}, **context)
        assert reply["error"]["code"] == "bad_request", reply


def test_a_cursor_of_another_list_is_refused(host: HostProcess) -> None:
    cursor = host.result("manage.list", {"limit": 1})["next_cursor"]
    reply = host.call("models.list", {"cursor": cursor}, context=page(A))
    assert reply["error"]["code"] == "bad_request"


def test_limit_is_bounded(host: HostProcess) -> None:
    assert host.call("manage.list", {"limit": 501})["error"]["code"] == "bad_request"
    assert host.call("manage.list", {"limit": 0})["error"]["code"] == "bad_request"
    assert len(host.result("manage.list", {"limit": 500})["models"]) == 500


def test_search_finds_a_models_files_by_name_or_sha256_prefix(
    host: HostProcess, big: BigStore
) -> None:
    found = host.result("manage.list", {"query": "Model-00123"})
    assert {m["name"] for m in found["models"]} == {"acme/model-00123"}
    assert len(found["models"]) == 6 and found["next_cursor"] is None
    prefix = big.digests[42][:10]
    by_sha = host.result("manage.list", {"query": prefix})["models"]
    assert [m["sha256"] for m in by_sha] == [big.digests[42]]


def test_stats_count_the_10000_files(host: HostProcess) -> None:
    started = time.perf_counter()
    stats = host.result("manage.stats")
    print(f"manage.stats {(time.perf_counter() - started) * 1000:.0f} ms")
    assert stats["models"] == 10_000 and stats["stored_blobs"] == 10_000


def test_availability_costs_the_same_with_100_and_10000_files(
    host: HostProcess, big: BigStore, tmp_path: Path
) -> None:
    small = build_store(tmp_path / "home" / "store-v2", 100, sites=(KEY_A, KEY_B), blob_files=False)
    other = HostProcess(small.root.parent)
    try:
        times = {
            "100": _availability_ms(other, small.of_site(KEY_B, (KEY_A, KEY_B))[0]),
            "10000": _availability_ms(host, big.of_site(KEY_B, (KEY_A, KEY_B))[0]),
        }
    finally:
        other.close()
    print("availability median ms (B's file asked by A): " + json.dumps(times))
    assert times["10000"] < max(3 * times["100"], 20.0)


def test_webmodels_ls_lists_10000_files(big: BigStore) -> None:
    started = time.perf_counter()
    done = run_cli(big.root.parent, "ls")
    took = time.perf_counter() - started
    print(f"webmodels ls, 10,000 files: {took:.2f} s (whole process)")
    assert len(done.stdout.splitlines()) == 10_001 and took < 10.0


def test_manage_jobs_pages_newest_first(home: Path) -> None:
    proc = HostProcess(home)
    try:
        proc.result("hello")
        _add_jobs(home / "store-v2" / "index.sqlite3", 7)
        seen = []
        for result in pages(proc, "manage.jobs", "jobs", limit=3):
            assert len(result["jobs"]) <= 3
            seen += [j["id"] for j in result["jobs"]]
        assert seen == [f"job-{i}" for i in reversed(range(7))]
    finally:
        proc.close()


def _availability_ms(host: HostProcess, sha256: str) -> float:
    times = []
    for _ in range(30):
        started = time.perf_counter()
        host.result("models.availability", {"query": {"sha256": sha256}}, context=page(A))
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def _add_jobs(index: Path, count: int) -> None:
    import sqlite3

    with sqlite3.connect(index) as db:
        for i in range(count):
            db.execute(
                "INSERT INTO jobs (id, sha256, urls, state, created_at, updated_at) "
                "VALUES (?, ?, '[]', 'failed', ?, ?)",
                (f"job-{i}", format(i, "064x"), 1000.0 + i, 1000.0 + i),
            )


def test_manage_catalogs_list_pages_by_name(home: Path, tmp_path: Path) -> None:
    for name in ("zeta", "alpha", "mid"):
        signer = CatalogSigner(name)
        document = signer.write(
            tmp_path / f"{name}.json", 1, [entry(name.encode(), f"{name}/m", "1.0.0")]
        )
        run_cli(home, "catalog", "add", str(document), "--key", signer.public)
    proc = HostProcess(home)
    try:
        seen = []
        for result in pages(proc, "manage.catalogs.list", "catalogs", limit=2):
            assert len(result["catalogs"]) <= 2
            seen += [c["name"] for c in result["catalogs"]]
        assert seen == ["alpha", "mid", "zeta"]
    finally:
        proc.close()


def test_a_host_start_does_not_visit_every_stored_file(home: Path) -> None:
    """Tightening an old install's modes (PRIVACY.md, hole 7) used to lstat() every
    blob at every start: most of a second at 10,000 files. A private blob folder is not
    entered now (nobody else can reach inside it), so a blob loosened inside one stays
    as it is, while `webmodels doctor` still walks every file and reports it."""
    built = build_store(home / "store-v2", 100)
    run_cli(home, "ls")  # the CLI runs with a private umask; the folders are 0700
    for folder in (home / "store-v2" / "blobs").rglob("*"):
        if folder.is_dir():
            folder.chmod(0o700)
    blob = home / "store-v2" / "blobs" / "sha256" / built.digests[0][:2] / built.digests[0]
    blob.chmod(0o644)
    proc = HostProcess(home)
    proc.result("hello")
    proc.close()
    assert blob.stat().st_mode & 0o777 == 0o644
    doctor = json.loads(run_cli(home, "--json", "doctor", check=False).stdout)
    assert str(blob) in json.dumps(doctor)
