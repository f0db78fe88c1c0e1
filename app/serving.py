"""Run the ASGI server: uvicorn, one or several worker processes, on a listening TCP socket."""

# Why not plain ``uvicorn.run(workers=N)``: its supervisor binds the listening socket with
# protocol 0.  Accepted connections inherit it, and asyncio only sets TCP_NODELAY on sockets
# whose protocol is IPPROTO_TCP, so every keep-alive response after the first waited ~40 ms
# for the client's delayed ACK (Kludex/uvicorn#3149).  Binding as TCP fixes that for one
# worker and for many alike.

from __future__ import annotations

import socket

import uvicorn
from uvicorn.supervisors import Multiprocess

APP = "app.main:create_app"


class TcpConfig(uvicorn.Config):
    """A uvicorn config whose listening socket says it is TCP, so connections get TCP_NODELAY."""

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.proto == socket.IPPROTO_TCP:
            return sock
        tcp = socket.socket(sock.family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=sock.detach())
        tcp.set_inheritable(True)
        return tcp


def server_config(host: str, port: int, workers: int) -> TcpConfig:
    return TcpConfig(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )


def run_server(host: str, port: int, workers: int) -> None:
    config = server_config(host, port, workers)
    server = uvicorn.Server(config)
    sock = config.bind_socket()
    try:
        if workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            config.load_app()
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
