"""Config key ``mirrors`` (pure): each entry is an OCI repository or an https prefix;
anything else is refused when the config is loaded, with an error saying the forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from webmodels.config import load_config
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.fetch.mirrors import parse_mirror

HEX = "ab" * 32


def config_with(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_mirrors_are_read_from_the_config_file_in_order(tmp_path: Path) -> None:
    path = config_with(
        tmp_path,
        'mirrors = ["oci://registry.example/models", "https://cache.example/by-hash/"]\n',
    )
    config = load_config(env={"WEBMODELS_CONFIG": str(path), "WEBMODELS_HOME": str(tmp_path)})
    assert config.mirrors == ("oci://registry.example/models", "https://cache.example/by-hash/")


def test_a_mirror_url_is_its_blob_by_digest() -> None:
    digest = Digest(HEX)
    assert (
        parse_mirror("oci://registry.example:5000/org/models").url(digest)
        == f"https://registry.example:5000/v2/org/models/blobs/sha256:{HEX}"
    )
    assert parse_mirror("oci://127.0.0.1:5000/models").url(digest).startswith("http://127.0.0.1")
    assert parse_mirror("https://cache.example/by-hash/").url(digest) == (
        f"https://cache.example/by-hash/{HEX}"
    )


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ('"oci://registry.example/models"', "must be a list of strings"),
        ("[1]", "must be a list of strings"),
        ('["ftp://cache.example/"]', "neither oci:// nor https://"),
        ('["http://cache.example/by-hash/"]', "http:// only on the loopback"),
        ('["https://cache.example/by-hash"]', "end it with /"),
        ('["https://user:pw@cache.example/"]', "no user:password@"),
        ('["https://cache.example/?x=1/"]', "?query"),
        ('["oci://registry.example/models:v1"]', "without :TAG"),
        ('["oci://registry.example/Models"]', "not a valid repository name"),
        ('["oci://"]', "not an OCI reference"),
        (str(["https://cache.example/"] * 17).replace("'", '"'), "more than 16"),
    ],
)
def test_a_hostile_or_mistyped_mirror_is_refused_with_a_clear_error(
    tmp_path: Path, value: str, says: str
) -> None:
    path = config_with(tmp_path, f"mirrors = {value}\n")
    with pytest.raises(HostError) as refused:
        load_config(env={"WEBMODELS_CONFIG": str(path), "WEBMODELS_HOME": str(tmp_path)})
    assert refused.value.code == "bad_request"
    assert says in refused.value.message
    assert "mirrors" in refused.value.message
