"""`local_network_origins`: which pages' own URLs may reach loopback and LAN addresses
(none by default; environment over config file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from webmodels.config import load_config
from webmodels.errors import HostError


def test_no_page_reaches_the_local_network_by_default(tmp_path: Path) -> None:
    env = {"WEBMODELS_HOME": str(tmp_path), "WEBMODELS_CONFIG": str(tmp_path / "none.toml")}
    assert load_config(env=env).local_network_origins == ()


def test_the_environment_wins_over_the_config_file(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text('local_network_origins = ["https://intranet.example"]\n')
    env = {"WEBMODELS_HOME": str(tmp_path), "WEBMODELS_CONFIG": str(file)}
    assert load_config(env=env).local_network_origins == ("https://intranet.example",)
    env["WEBMODELS_LOCAL_NETWORK_ORIGINS"] = "http://a.test:8000 http://b.test:8000"
    assert load_config(env=env).local_network_origins == (
        "http://a.test:8000",
        "http://b.test:8000",
    )
    env["WEBMODELS_LOCAL_NETWORK_ORIGINS"] = ""
    assert load_config(env=env).local_network_origins == ()


def test_a_bad_value_is_a_clear_error(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text('local_network_origins = "*"\n')
    env = {"WEBMODELS_HOME": str(tmp_path), "WEBMODELS_CONFIG": str(file)}
    with pytest.raises(HostError, match="local_network_origins"):
        load_config(env=env)
