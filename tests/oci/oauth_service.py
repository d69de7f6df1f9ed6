"""An OAuth2 token service for the test registry (Distribution's ``auth: token``) that
takes identity tokens: the refresh-token grant of the distribution token spec (a form
POST: ``grant_type=refresh_token``, ``refresh_token``, ``client_id``, ``service``,
``scope``), or, with ``refuse_post``, only a GET with the identity token as basic auth
(``<token>:TOKEN``), as older token services answer. It records every request."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from support.registry_token import SERVICE, TokenService, _certificate, _jwt


@dataclass
class OAuthLog:
    requests: list[tuple[str, dict[str, str], str | None]] = field(default_factory=list)
    # (method, form or query fields, Authorization header)


@contextmanager
def oauth_service(
    folder: Path, *, refresh_token: str, refuse_post: bool = False
) -> Iterator[tuple[TokenService, OAuthLog]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _certificate(key)
    root = folder / "oauth-root.pem"
    root.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    basic = "Basic " + base64.b64encode(f"<token>:{refresh_token}".encode()).decode()
    log = OAuthLog()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            fields = _fields(self.rfile.read(length).decode())
            log.requests.append(("POST", fields, self.headers.get("Authorization")))
            granted = (
                fields.get("grant_type") == "refresh_token"
                and fields.get("refresh_token") == refresh_token
                and fields.get("client_id")
                and fields.get("service") == SERVICE
            )
            if refuse_post:
                self._answer(404, None)
            elif granted:
                self._answer(200, {"access_token": _jwt(key, cert, fields.get("scope", ""), "u")})
            else:
                self._answer(401, None)

        def do_GET(self) -> None:
            fields = _fields(urlsplit(self.path).query)
            log.requests.append(("GET", fields, self.headers.get("Authorization")))
            if self.headers.get("Authorization") != basic:
                self._answer(401, None)
                return
            self._answer(200, {"token": _jwt(key, cert, fields.get("scope", ""), "u")})

        def _answer(self, status: int, value: object) -> None:
            body = json.dumps(value).encode() if value is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        realm = f"http://127.0.0.1:{server.server_address[1]}/token"
        yield TokenService(realm, root, "<token>", refresh_token), log
    finally:
        server.shutdown()
        server.server_close()


def _fields(text: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(text).items()}
