"""The server's listening socket: accepted connections must get TCP_NODELAY with any worker count."""

from __future__ import annotations

import asyncio
import socket

from app.serving import bind_socket


def nodelay_of_accepted_connection(listener: socket.socket) -> int:
    """Serve one connection with asyncio on the listener; report TCP_NODELAY as the server saw it."""
    seen: list[int] = []

    async def main() -> None:
        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=listener)
        async with server:
            port = listener.getsockname()[1]
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(main())
    return seen[0]


def test_the_listening_socket_is_tcp_so_connections_get_nodelay() -> None:
    listener = bind_socket("127.0.0.1", 0)
    assert listener.proto == socket.IPPROTO_TCP
    assert listener.getsockname()[0] == "127.0.0.1"
    assert nodelay_of_accepted_connection(listener) != 0


def test_a_plain_protocol_zero_socket_would_not_get_nodelay() -> None:
    """The control: what uvicorn's own bind gives, and why app.serving binds its own socket."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    assert nodelay_of_accepted_connection(listener) == 0
