"""Run an ASGI app under uvicorn on a socket we create ourselves.

Why not `uvicorn.run(host=, port=)`: uvicorn binds with proto 0, and asyncio only turns on
TCP_NODELAY for accepted sockets whose proto says TCP. Without it a response can wait ~40 ms for
the peer's delayed ACK, which a burst of a thousand posts turns into seconds.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn


def tcp_listener(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def serve(app: Any, host: str, port: int, **config: Any) -> None:
    sock = tcp_listener(host, port)
    server = uvicorn.Server(uvicorn.Config(app, **config))
    asyncio.run(server.serve(sockets=[sock]))
