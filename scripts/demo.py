"""Show webmodels at work on a real model, in a throw-away store.

1. takes a real ONNX model out of a PyPI wheel (model hubs are not needed),
2. imports it twice from two places with the `webmodels` CLI: one blob is stored,
3. starts the native host the way a browser does and speaks the protocol to it:
   `hello`, `models.load`, `models.read` (chunked under the 1 MiB frame limit),
4. shows what a page may see, and `ls` / `du` / `verify`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.host import HostProcess, webmodels_env  # noqa: E402
from support.models import real_model  # noqa: E402

PAGE = {
    "partition": {"top_site": "https://news.example", "origin": "https://news.example"},
    "user_activation": True,
    "trusted": False,
}


def cli(home: Path, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "webmodels", *args],
        env=webmodels_env(home),
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def step(text: str) -> None:
    print(f"\n== {text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the demo store")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="webmodels-demo-"))
    try:
        step("fetching a real model (magika 1.0.3, from its PyPI wheel)")
        model = real_model("magika")
        copy = home / "downloads" / "magika-copy.onnx"
        copy.parent.mkdir()
        shutil.copyfile(model, copy)
        digest = hashlib.sha256(model.read_bytes()).hexdigest()
        print(f"{model.name}: {model.stat().st_size:,} bytes, sha256 {digest[:16]}…")

        step("importing it twice, from two places")
        print(
            cli(home, "import", str(model), "--name", "google/magika", "--model-version", "1.0.3")
        )
        print(cli(home, "import", str(copy)))
        print(cli(home, "ls"))
        print(cli(home, "du"))

        step("the native host, spoken to as a browser would")
        host = HostProcess(home)
        try:
            started = time.perf_counter()
            hello = host.result("hello")
            print(
                f"hello: protocol {hello['protocol_version']}, host {hello['host_version']}, "
                f"providers {hello['providers']} ({(time.perf_counter() - started) * 1000:.0f} ms)"
            )
            info = host.result("models.load", {"query": {"sha256": digest}})["model"]
            print(
                f"models.load: {info['name']} {info['version']}, inputs "
                + ", ".join(f"{i['name']}:{i['type']}{i['dims']}" for i in info["inputs"])
            )
            started = time.perf_counter()
            data, offset, chunks = b"", 0, 0
            while True:
                part = host.result("models.read", {"sha256": digest, "offset": offset})
                data += base64.b64decode(part["data"])
                offset, chunks = offset + part["length"], chunks + 1
                if part["eof"]:
                    break
            seconds = time.perf_counter() - started
            same = hashlib.sha256(data).hexdigest() == digest
            print(
                f"models.read: {len(data):,} bytes in {chunks} frames "
                f"(largest frame {max(host.sizes):,} B) at {len(data) / seconds / 1e6:.1f} MB/s;"
                f" sha256 {'matches' if same else 'DIFFERS'}"
            )
            seen = host.call("models.availability", {"query": {"sha256": digest}}, context=PAGE)
            print(
                f"a page at news.example asks for it: {seen['result']['availability']} "
                "(it never obtained it, so the store behaves as if it were absent)"
            )
        finally:
            host.close()

        step("verify")
        print(cli(home, "verify"))
        return 0 if same else 1
    finally:
        if args.keep:
            print(f"store kept at {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
