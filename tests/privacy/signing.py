"""Throw-away commons keys and lists for tests, and a config that trusts them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from support.catalogs import DocumentSigner
from webmodels.commons.lists import sign_list


def entry(data: bytes, name: str = "test/model") -> dict[str, Any]:
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "name": name,
        "version": "1",
        "size": len(data),
    }


class Signer(DocumentSigner):
    def __init__(self) -> None:
        super().__init__(sign_list)


def trusting_config(home: Path, signer: Signer, **settings: object) -> dict[str, str]:
    """A config file trusting `signer`; returns the env for HostProcess / run_cli."""
    lines = [f"commons_keys = [{json.dumps(signer.public)}]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    path = home / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"WEBMODELS_CONFIG": str(path)}
