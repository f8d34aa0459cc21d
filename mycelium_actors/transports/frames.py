"""The frame limit every adapter enforces, and how it is worded."""

from __future__ import annotations

#: A stream frame's length prefix: 4 bytes, big-endian.
PREFIX = 4
#: The largest length the prefix can carry.
LARGEST = 2**32 - 1


def check_max_frame(max_frame: int) -> None:
    """Raises ValueError for a maximum a length prefix cannot carry."""
    if not 1 <= max_frame <= LARGEST:
        raise ValueError(f"max_frame must be between 1 and {LARGEST} bytes, got {max_frame}")


def oversize(size: int, max_frame: int) -> str:
    return f"frame of {size} bytes exceeds the maximum {max_frame}"
