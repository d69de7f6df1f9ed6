"""Logging to a rotating file in the platform's state folder; never to stdout."""

from __future__ import annotations

import logging
import logging.handlers
import os

from webmodels.config import Config

LOG_FILE = "host.log"
MAX_BYTES = 1024 * 1024
BACKUPS = 3


def setup_logging(config: Config, *, name: str = LOG_FILE) -> str:
    """Send the ``webmodels`` loggers to ``<log_dir>/<name>``; returns the path."""
    os.makedirs(config.log_dir, exist_ok=True)
    path = str(config.log_dir / name)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
    )
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
