"""Logging to a rotating file in the platform's state folder; never to stdout."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys

from webmodels.config import Config

LOG_FILE = "host.log"
MAX_BYTES = 1024 * 1024
BACKUPS = 3


def setup_logging(config: Config, *, name: str = LOG_FILE) -> str:
    """Send the ``webmodels`` loggers to ``<log_dir>/<name>``; returns the path."""
    path = str(config.log_dir / name)
    handler: logging.Handler
    try:
        os.makedirs(config.log_dir, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
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
