"""Throw-away commons keys and lists for tests, and a config that trusts them."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from webmodels.commons.lists import public_key_text, sign_list


def entry(data: bytes, name: str = "test/model") -> dict[str, Any]:
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "name": name,
        "version": "1",
        "size": len(data),
    }


class Signer:
    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.public = public_key_text(self.key.public_key())

    def payload(
        self, version: int, models: list[dict[str, Any]], *, expires_in: timedelta | None = None
    ) -> bytes:
        expires = datetime.now(UTC) + (expires_in or timedelta(days=30))
        body = {
            "version": version,
            "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "models": models,
        }
        return json.dumps(body).encode()

    def sign(self, version: int, models: list[dict[str, Any]], **kw: Any) -> bytes:
        return sign_list(self.payload(version, models, **kw), self.key)

    def write(self, path: Path, version: int, models: list[dict[str, Any]], **kw: Any) -> Path:
        path.write_bytes(self.sign(version, models, **kw))
        return path


def trusting_config(home: Path, signer: Signer, **settings: object) -> dict[str, str]:
    """A config file trusting `signer`; returns the env for HostProcess / run_cli."""
    lines = [f"commons_keys = [{json.dumps(signer.public)}]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    path = home / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"WEBMODELS_CONFIG": str(path)}
