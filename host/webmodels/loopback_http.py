"""The loopback byte path's HTTP replies that carry no model bytes: the headers every
reply has, refusals, and the CORS preflight of a write (loopback.py says who is
answered and why)."""

from __future__ import annotations

import logging
import socket

from webmodels.listener import response_head

log = logging.getLogger("webmodels.loopback")


def common_headers(origin: str | None) -> list[tuple[str, str]]:
    headers = [("Cache-Control", "no-store"), ("Vary", "Origin")]
    if origin is not None:
        headers.insert(0, ("Access-Control-Allow-Origin", origin))
    return headers


def refuse(conn: socket.socket, status: int, why: str, *, origin: str | None = None) -> None:
    body = why.encode()
    # With the extension's Origin, let it read the status.
    headers = [
        *(common_headers(origin) if origin is not None else ()),
        ("Content-Type", "text/plain"),
    ]
    headers.append(("Content-Length", str(len(body))))
    log.debug("loopback: %d %s", status, why)
    try:
        conn.sendall(response_head(status, headers) + body)
    except OSError as exc:
        log.info("loopback: refusal not sent: %s", exc)


def preflight(conn: socket.socket, origin: str | None) -> None:
    headers = [*common_headers(origin), ("Access-Control-Allow-Methods", "PUT")]
    headers += [("Access-Control-Allow-Headers", "Content-Type")]
    headers += [("Access-Control-Allow-Private-Network", "true"), ("Content-Length", "0")]
    try:
        conn.sendall(response_head(204, headers))
    except OSError as exc:
        log.info("loopback: preflight reply not sent: %s", exc)
