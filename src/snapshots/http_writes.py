"""One write per response: uvicorn's HTTP protocol with a response's writes joined.

uvicorn writes a response's head when the app sends `http.response.start` and its body when
the app sends `http.response.body`, and uvloop passes each write to the socket at once: two
system calls and two TCP segments for every small response, the largest single cost of a
cached read (about a third of the server's time is the kernel's, most of it in `write`). Here
the writes made during one turn of the event loop are held and written together at the end of
that turn, so a response sent in one go (every Litestar response, every fast-path answer)
leaves in one write. What is written later (a streamed body's next part, an interim
`100 Continue`) still leaves at the end of the turn it was written in: no answer waits for
another. Past `FLUSH_BYTES` the held bytes are written at once, so uvicorn's flow control sees
the socket's buffer as before, and when the client half-closes they are written before the
transport closes (the end of the turn would come too late).

uvicorn has no setting for this: its h11, httptools and zttp protocols each write per ASGI
message.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FLUSH_BYTES = 64 * 1024
"""Held bytes written at once (a large body is not copied into one buffer first)."""


class JoinedWrites(asyncio.Transport):
    """A transport that holds writes until the event loop's current turn ends, then writes them
    to `transport` as one. Everything else is `transport`'s."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))
        self._held_bytes += len(data)
        if self._held_bytes >= FLUSH_BYTES:
            self.flush()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Write what is held (a closed connection drops it, as its transport would)."""
        held, self._held, self._held_bytes = self._held, [], 0
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held, self._held_bytes = [], 0
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._held_bytes

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


class JoinedWritesProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through `JoinedWrites` (flushed on the client's
    EOF too)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(JoinedWrites(transport, self.loop))

    def eof_received(self) -> None:
        # The client half-closed: the transport closes once this returns, and drops what is
        # written to it later. The end of the turn the held bytes wait for comes after this
        # (the event loop polls the socket before it), so write them now, as uvicorn did.
        if isinstance(self.transport, JoinedWrites):
            self.transport.flush()
        super().eof_received()
