"""Length-prefixed JSON frames between the Sandbox and its servers.

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON. Raw file
descriptors (not Python file objects) so `select` sees exactly what is buffered.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024
"""A frame larger than this is a protocol error, not a big answer (output is capped long before)."""


class ChannelClosed(Exception):
    """The other end closed its pipe or stopped answering in time (`timed_out`)."""

    def __init__(self, reason: str, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.timed_out = timed_out


def send_frame(fd: int, message: dict[str, Any]) -> None:
    payload = json.dumps(message, separators=(",", ":")).encode("utf-8")
    data = memoryview(HEADER.pack(len(payload)) + payload)
    try:
        while data:
            written = os.write(fd, data)
            data = data[written:]
    except (BrokenPipeError, OSError) as error:
        raise ChannelClosed(str(error)) from None


def receive_frame(fd: int, deadline: float | None = None) -> dict[str, Any]:
    """The next frame; `ChannelClosed` on end of file or once `deadline` (monotonic) passes."""
    (length,) = HEADER.unpack(read_exactly(fd, HEADER.size, deadline))
    if length > MAX_FRAME:
        raise ChannelClosed(f"frame of {length} bytes is larger than {MAX_FRAME}")
    return json.loads(read_exactly(fd, length, deadline).decode("utf-8"))


def read_exactly(fd: int, size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise ChannelClosed("no answer in time", timed_out=True)
        try:
            chunk = os.read(fd, min(remaining, 1 << 20))
        except OSError as error:
            raise ChannelClosed(str(error)) from None
        if not chunk:
            raise ChannelClosed("end of file")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
