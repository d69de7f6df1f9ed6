"""Coverage-guided fuzzing of the host's parsers with atheris (libFuzzer for Python):
`scripts/fuzz --inputs N` runs the targets of stress_lib/fuzz_targets.py for N inputs
in all (shared out by `SHARES`), each target in its own process (libFuzzer ends the
process when its runs are done).

libFuzzer's ``-timeout`` bounds each input (a hang is a finding), ``-rss_limit_mb``
its memory; an exception other than `HostError` with a documented code is a crash.
Each target starts from a small seed corpus of valid inputs, so mutation reaches past
the first check.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stress_lib.operations import onnx_model

# Share of the inputs each target gets: the ONNX metadata target writes a file and runs
# onnx's checker per input, some 20 times slower than the others.
SHARES = {
    "frames": 0.2,
    "requests": 0.2,
    "catalogs": 0.2,
    "commons": 0.2,
    "onnx_safety": 0.15,
    "onnx_metadata": 0.05,
}
TARGET_NAMES = tuple(SHARES)
# Run only when named (`--target methods`): the real handlers behind dispatch, on a
# host built in the fuzzing process (stress_lib/fuzz_methods.py).
EXTRA_TARGETS = ("methods",)
PER_INPUT_S = 10  # libFuzzer's -timeout: one input taking longer is a hang
_DONE = re.compile(r"Done (\d+) runs in (\d+) second")


@dataclass
class FuzzRow:
    target: str
    inputs: int
    seconds: float
    failed: bool
    report: str = ""


def _hash(n: int) -> str:
    return f"{n:064x}"


def _seeds(target: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    expires = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    model = {"name": "fuzz/tiny", "version": "1.0.0", "sha256": _hash(1), "size": 10}
    seeds: list[bytes] = []
    if target in ("frames", "requests"):
        body = {"id": 1, "method": "cos.write.begin", "params": {"sha256": _hash(2), "size": 3}}
        page = {"partition": {"top_site": "https://a.example", "origin": "https://a.example"}}
        # What fuzzing found stays in the corpus, so every run tries it again.
        found = {"partition": {"top_site": "https://a]", "origin": "https://a.example"}}
        for request in (
            body,
            {**body, "context": page},
            {"id": "x", "method": "manage.delete"},
            {**body, "context": found},
        ):
            text = json.dumps(request).encode()
            seeds.append(
                len(text).to_bytes(4, sys.byteorder) + text if target == "frames" else text
            )
    elif target in ("catalogs", "commons"):
        payload: dict[str, object] = {"version": 1, "expires": expires}
        if target == "catalogs":
            payload |= {"catalog": "fuzz", "models": [{**model, "urls": ["https://a.example/m"]}]}
            from webmodels.catalogs.documents import sign_catalog as sign
        else:
            payload |= {"models": [model]}
            from webmodels.commons.lists import sign_list as sign
        raw = json.dumps(payload).encode()
        seeds += [raw, sign(raw, Ed25519PrivateKey.generate())]
    elif target == "methods":
        # Each byte is a choice (stress_lib/fuzz_inputs.py): a few walks to start from.
        seeds += [bytes((n + i) % 256 for i in range(64)) for n in range(0, 256, 37)]
        seeds += [bytes([1, 2, 1, 1, 1, 2, 1, 1] * 8), bytes([0, 3, 1, 1, 2, 0, 0] * 8)]
    else:
        for seed in range(2):
            path = onnx_model(folder / f"seed{seed}.onnx", weight_bytes=16 * (seed + 1), seed=seed)
            seeds.append(path.read_bytes())
            path.unlink()
    for n, data in enumerate(seeds):
        (folder / f"seed-{n}").write_bytes(data)


def run_target(target: str, inputs: int, work: Path) -> FuzzRow:
    corpus = work / target
    _seeds(target, corpus)
    argv = [sys.executable, "-m", "stress_lib.fuzz_main", target, f"-runs={inputs}"]
    argv += [f"-timeout={PER_INPUT_S}", "-rss_limit_mb=2048", "-max_len=4096", str(corpus)]
    started = time.monotonic()
    run = subprocess.run(argv, capture_output=True, text=True, cwd=work)
    seconds = time.monotonic() - started
    out = run.stdout + run.stderr
    done = _DONE.search(out)
    failed = run.returncode != 0 or done is None
    report = out[-3000:] if failed else ""
    return FuzzRow(target, int(done.group(1)) if done else 0, seconds, failed, report)


def run_fuzz(
    inputs: int, work: Path, targets: tuple[str, ...] = TARGET_NAMES, *, jobs: int = 2
) -> list[FuzzRow]:
    """`inputs` in total, shared out by `SHARES` among `targets`, `jobs` targets at a
    time (each is one process on one core)."""
    shares = {**SHARES, **dict.fromkeys(EXTRA_TARGETS, 1.0)}
    total = sum(shares[t] for t in targets)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = [
            pool.submit(run_target, t, round(inputs * shares[t] / total), work) for t in targets
        ]
        return [run.result() for run in runs]
