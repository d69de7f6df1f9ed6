"""Pytest fixtures shared across the suite (registered in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.httpserver import ModelServer


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    """A running HTTP model server on 127.0.0.1, stopped after the test."""
    with ModelServer() as server:
        yield server
