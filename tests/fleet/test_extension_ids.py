"""`chromium_extension_ids`: a fleet's self-signed CRX has an ID of its own; the host's
registration lets that ID reach the host beside the project's (config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from webmodels.config import CHROMIUM_EXTENSION_ID, load_config
from webmodels.errors import HostError
from webmodels.registration.documents import manifest_document

FLEET_ID = "kefonbkdegglhnagmdhcigabcgmnbchj"


def _env(tmp_path: Path, policy: str) -> dict[str, str]:
    (tmp_path / "policy.toml").write_text(policy)
    return {
        "WEBMODELS_POLICY": str(tmp_path / "policy.toml"),
        "WEBMODELS_CONFIG": str(tmp_path / "none.toml"),
        "WEBMODELS_HOME": str(tmp_path / "home"),
    }


def test_the_manifest_allows_the_fleet_extension_id_beside_the_project_one(
    tmp_path: Path,
) -> None:
    config = load_config(env=_env(tmp_path, f'chromium_extension_ids = ["{FLEET_ID}"]\n'))
    document = manifest_document("chromium", host_path=Path("/opt/host"), config=config)
    assert document["allowed_origins"] == [
        f"chrome-extension://{CHROMIUM_EXTENSION_ID}/",
        f"chrome-extension://{FLEET_ID}/",
    ]


def test_a_malformed_extension_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HostError, match="chromium_extension_ids"):
        load_config(env=_env(tmp_path, 'chromium_extension_ids = ["https://evil.example/"]\n'))
