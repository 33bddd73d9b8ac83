"""A TCP relay between the EV emulator and the SECC that can reset the connection: the
SECC's side of it is closed with SO_LINGER 0, so the SECC receives a real TCP RST (what an
EV that loses power mid-session looks like), not an orderly FIN."""

from __future__ import annotations

import asyncio
import socket
import struct


class ResettingRelay:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port: int | None = None
        self._server: asyncio.AbstractServer | None = None
        self._upstream: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task] = set()

    async def __aenter__(self) -> "ResettingRelay":
        self._server = await asyncio.start_server(self._client, "::1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._upstream.append(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        for coro in (pipe(reader, up_writer), pipe(up_reader, writer)):
            task = asyncio.create_task(coro)
            self._tasks.add(task)

    def reset(self) -> None:
        """RST towards the SECC on every relayed connection."""
        for writer in self._upstream:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
