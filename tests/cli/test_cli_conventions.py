"""What every command does alike, run as a user runs it: ``--json`` before or after
the command, and a reader that goes away early (``webmodels ls | head -c1``)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.host import run_cli, webmodels_env
from support.models import tiny_model


def test_json_is_accepted_before_and_after_the_command(home: Path, tmp_path: Path) -> None:
    run_cli(home, "import", str(tiny_model(tmp_path / "m.onnx")))
    before = json.loads(run_cli(home, "--json", "ls").stdout)
    after = json.loads(run_cli(home, "ls", "--json").stdout)
    assert before == after and len(after) == 1
    assert json.loads(run_cli(home, "catalog", "ls", "--json").stdout) == []
    assert "stored_blobs" in json.loads(run_cli(home, "du", "--json").stdout)
    assert run_cli(home, "ls").stdout.startswith("SHA256")  # and text without it


def ls_into_closed_pipe(home: Path, *, read: int) -> subprocess.CompletedProcess[bytes]:
    """`webmodels ls` whose reader takes `read` bytes, then closes the pipe."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "webmodels", "ls"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=webmodels_env(home),
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(read)
    proc.stdout.close()
    stderr = proc.stderr.read()
    return subprocess.CompletedProcess(proc.args, proc.wait(), b"", stderr)


def test_a_reader_that_goes_away_early_ends_ls_quietly_as_unix_tools_do(
    home: Path, tmp_path: Path
) -> None:
    models = [str(tiny_model(tmp_path / f"m{n}.onnx", seed=n)) for n in range(3)]
    run_cli(home, "import", *models)
    started = time.monotonic()
    for _ in range(2):  # the pipe closed before ls writes: always a broken pipe
        result = ls_into_closed_pipe(home, read=0)
        assert result.stderr == b""
        assert result.returncode == -signal.SIGPIPE  # 141 in the shell, as `ls`, `cat`
    for _ in range(5):  # `| head -c1`: whether ls had written first is up to the race
        shell = subprocess.run(
            [
                "bash",
                "-c",
                f'"{sys.executable}" -m webmodels ls | head -c1 >/dev/null; '
                'echo "${PIPESTATUS[0]}" >&2',
            ],
            capture_output=True,
            env=webmodels_env(home),
        )
        assert shell.stderr.split() in ([b"0"], [b"141"]), shell.stderr.decode()
    print(f"7 runs of ls into a closed pipe: {time.monotonic() - started:.1f} s")
