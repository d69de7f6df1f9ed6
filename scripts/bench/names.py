"""Asking by name and range against asking by hash: the cost of resolution, side by
side in one run through a real host process (the same pre-installed model either way,
so no transfer), for catalogs of growing size.

Each round alternates `models.load {sha256}` and `models.load {name, version: "^1"}`
from a page context; the catalog lists the model among N other entries (other names
and versions), so resolution scans, filters and sorts N candidates per request.

Usage: .venv/bin/python scripts/bench/names.py [--sizes 1,1000,10000] [--calls 300]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.catalogs import CatalogSigner, entry  # noqa: E402
from support.host import HostProcess, run_cli  # noqa: E402
from support.models import tiny_model  # noqa: E402

PAGE = {"partition": {"top_site": "https://a.example", "origin": "https://a.example"}}


def run(size: int, calls: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        home, folder = work / "home", work / "pre"
        home.mkdir()
        folder.mkdir()
        data = tiny_model(folder / "m.onnx").read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        listed = [{"file": "m.onnx", "sha256": digest, "name": "acme/model", "version": "1.4.0"}]
        (folder / "models.json").write_text(json.dumps({"version": 1, "models": listed}))
        others = [
            entry(f"{n}".encode(), f"pub{n % 97}/model{n % 89}", f"{n % 7}.{n % 13}.{n}")
            for n in range(size - 1)
        ]
        signer = CatalogSigner("bench")
        document = signer.write(work / "c.json", 1, [entry(data, "acme/model", "1.4.0"), *others])
        env = {"WEBMODELS_PREINSTALLED": str(folder)}
        run_cli(home, "catalog", "add", str(document), "--key", signer.public, **env)
        host = HostProcess(home, **env)
        try:
            queries = {
                "hash": {"sha256": digest},
                "name": {"name": "acme/model", "version": "^1"},
            }
            times: dict[str, list[float]] = {"hash": [], "name": []}
            for way in ("hash", "name"):  # warm-up (the catalog is parsed once)
                assert host.call("models.load", {"query": queries[way]}, context=PAGE)["ok"]
            for n in range(calls):
                for way in ("hash", "name") if n % 2 == 0 else ("name", "hash"):
                    started = time.perf_counter()
                    reply = host.call("models.load", {"query": queries[way]}, context=PAGE)
                    times[way].append(time.perf_counter() - started)
                    assert reply["ok"], reply
        finally:
            host.close()
    return statistics.median(times["hash"]), statistics.median(times["name"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,1000,10000")
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    print(f"{'catalog entries':>16} {'by hash':>10} {'by name':>10} {'ratio':>7}")
    for size in (int(s) for s in args.sizes.split(",")):
        by_hash, by_name = run(size, args.calls)
        print(
            f"{size:>16} {by_hash * 1000:>8.2f} ms {by_name * 1000:>7.2f} ms"
            f" {by_name / by_hash:>6.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
