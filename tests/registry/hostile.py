"""A hostile registry on 127.0.0.1: each path answers what the test says (a status, headers, a body that
may be huge, slow, malformed or a redirect loop), and every request is recorded with its headers. The
real registry (docker-registry) cannot be made to misbehave; what is exercised is the client's reading."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Body = bytes | Callable[[], Iterable[bytes]]


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: the body; a callable yields it in pieces (sent as they come, without a Content-Length unless given)
    body: Body = b""
    #: the raw bytes of the answer after the status line (headers, blank line, body), as the test writes them
    raw: bytes | None = None


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class HostileRegistry:
    def __init__(self, routes: dict[str, Answer] | None = None) -> None:
        """`routes`: the answer per path (without the query); any other path is a 404."""
        self.routes: dict[str, Answer] = dict(routes or {})
        self.seen: list[Seen] = []
        self.sent = 0  # body bytes written, in all
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                path = self.path.split("?", 1)[0]
                registry.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                answer = registry.routes.get(path, Answer(404, {"Content-Type": "application/json"},
                                                          b'{"errors": [{"code": "MANIFEST_UNKNOWN"}]}'))
                try:
                    self._send(answer)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def _send(self, answer: Answer) -> None:
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                if answer.raw is not None:  # the rest of the headers, the blank line and the body, as written
                    self.flush_headers()
                    self.wfile.write(answer.raw)
                    self.close_connection = True
                    return
                if callable(answer.body):
                    if "Content-Length" not in answer.headers:
                        self.send_header("Connection", "close")
                    self.end_headers()
                    for piece in answer.body():
                        self.wfile.write(piece)
                        self.wfile.flush()
                        registry.sent += len(piece)
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
                registry.sent += len(answer.body)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HostileRegistry:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def slowly(data: bytes, every: float) -> Callable[[], Iterable[bytes]]:
    """The body one byte at a time, one every `every` seconds."""
    def pieces() -> Iterable[bytes]:
        for byte in data:
            time.sleep(every)
            yield bytes([byte])
    return pieces


def endless(piece: bytes, total: int) -> Callable[[], Iterable[bytes]]:
    """`total` bytes of `piece` repeated (an answer far larger than any manifest)."""
    def pieces() -> Iterable[bytes]:
        for _ in range(total // len(piece)):
            yield piece
    return pieces
