"""Placeholder: the linkedin emulator is being written (issue 4)."""

from __future__ import annotations

from typing import Any


def routes(state: Any) -> list:
    return []
