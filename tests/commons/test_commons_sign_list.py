"""scripts/sign-list signs a list with a key kept outside the repository, and refuses a
key inside it (so a release key is never written into, or read from, the project)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from webmodels.commons.trust import Trust, TrustedKey
from webmodels.signing import parse_public_key

ROOT = Path(__file__).resolve().parents[2]
SIGN_LIST = ROOT / "scripts" / "sign-list"


def sign_list(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SIGN_LIST), *args], capture_output=True, text=True, check=False
    )


def test_sign_list_signs_with_a_key_outside_the_repository(tmp_path: Path) -> None:
    key = tmp_path / "commons.pem"
    assert sign_list("--generate-key", str(key)).returncode == 0
    payload = {"version": 3, "expires": "2030-01-01T00:00:00Z", "models": []}
    (tmp_path / "list.json").write_text(json.dumps(payload), "utf-8")
    signed = tmp_path / "commons.json"
    assert (
        sign_list("--key", str(key), str(tmp_path / "list.json"), "-o", str(signed)).returncode == 0
    )
    public = parse_public_key(Path(f"{key}.pub").read_text("ascii"))
    listed = Trust([TrustedKey(public)]).verify(signed.read_bytes(), now=datetime.now(UTC))
    assert listed.version == 3


def test_sign_list_refuses_a_key_inside_the_repository(tmp_path: Path) -> None:
    inside = ROOT / "host" / "webmodels" / "data" / "release.pem"
    generated = sign_list("--generate-key", str(inside))
    assert generated.returncode != 0 and "inside the repository" in generated.stderr
    assert not inside.exists()
    (tmp_path / "list.json").write_text("{}", "utf-8")
    signed = sign_list("--key", str(inside), str(tmp_path / "list.json"))
    assert signed.returncode == 1 and "inside the repository" in signed.stderr
