"""Logging to a rotating file in the platform's state folder; never to stdout."""

from __future__ import annotations

import io
import logging
import logging.handlers
import sys
from typing import cast

from webmodels.config import Config
from webmodels.permissions import make_private_dir, private_opener

LOG_FILE = "host.log"
MAX_BYTES = 1024 * 1024
BACKUPS = 3


def setup_logging(config: Config, *, name: str = LOG_FILE) -> str:
    """Send the ``webmodels`` loggers to ``<log_dir>/<name>``; returns the path."""
    path = str(config.log_dir / name)
    handler: logging.Handler
    try:
        make_private_dir(config.log_dir, own=config.log_dir)
        handler = _PrivateRotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
    except OSError as exc:
        # No log is better than no host; stderr is the browser's log (never stdout).
        handler = logging.StreamHandler(sys.stderr)
        path = f"stderr ({config.log_dir} not writable: {exc.strerror})"
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s"
        )
    )
    root = logging.getLogger("webmodels")
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, config.log_level, logging.INFO))
    root.propagate = False
    return path


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Each log file (and each one a rollover starts) is created 0600: logs name models
    and sites (PRIVACY.md, hole 7)."""

    def _open(self) -> io.TextIOWrapper:
        stream = open(  # noqa: SIM115 - the handler owns and closes it
            self.baseFilename,
            self.mode,
            encoding=self.encoding,
            errors=self.errors,
            opener=private_opener,
        )
        return cast(io.TextIOWrapper, stream)
