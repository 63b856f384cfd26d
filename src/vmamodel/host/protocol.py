"""The parent side of the host-oracle wire protocol (child.py holds the mirror image).

A frame is a 4-byte little-endian length and a ``marshal`` payload, over a pair of pipes.
Requests are ``(op, *args)`` tuples; responses are ``("ok", value)``, ``("err", errno)``,
``("out", addr, length)`` or ``("exc", traceback_text)``. marshal is used because it is
built in (the child must load as few shared objects as possible) and fast.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import select
from typing import Any

__all__ = ["U64", "Channel", "ChannelClosed", "ChannelTimeout"]

U64 = (1 << 64) - 1


class ChannelClosed(Exception):
    """The other end went away (EOF or EPIPE)."""


class ChannelTimeout(Exception):
    """No answer within the time limit."""


class Channel:
    """One request/response pipe pair; ``call`` is one round trip."""

    def __init__(self, write_fd: int, read_fd: int, timeout: float | None) -> None:
        self.write_fd = write_fd
        self.read_fd = read_fd
        self.timeout_ms = None if timeout is None else int(timeout * 1000)
        self._poll = select.poll()
        self._poll.register(read_fd, select.POLLIN)

    def call(self, request: tuple[Any, ...]) -> tuple[Any, ...]:
        self.send(request)
        response: tuple[Any, ...] = self.recv()
        return response

    def send(self, obj: Any) -> None:
        payload = marshal.dumps(obj)
        data = memoryview(len(payload).to_bytes(4, "little") + payload)
        try:
            while data:
                data = data[os.write(self.write_fd, data):]
        except (BrokenPipeError, OSError) as exc:
            raise ChannelClosed(str(exc)) from None

    def recv(self) -> Any:
        if not self._poll.poll(self.timeout_ms):
            raise ChannelTimeout
        size = int.from_bytes(self._read_exact(4), "little")
        return marshal.loads(self._read_exact(size))

    def _read_exact(self, n: int) -> bytes:
        chunks = []
        while n:
            try:
                chunk = os.read(self.read_fd, n)
            except OSError as exc:
                raise ChannelClosed(str(exc)) from None
            if not chunk:
                raise ChannelClosed("end of file")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        for fd in (self.write_fd, self.read_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.write_fd = self.read_fd = -1
