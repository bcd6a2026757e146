"""A loopback HTTP proxy in front of the real registry that answers some requests with an error status
(429, 503) instead of forwarding them: the registry's own throttling and outages, made to order."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


class FaultProxy:
    def __init__(self, upstream: str, status: int, failures: int | None) -> None:
        """Answer `status` to the first `failures` requests (None: to every request), forward the rest."""
        self.upstream, self.status, self.left, self.seen = upstream, status, failures, 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                with proxy.lock:
                    proxy.seen += 1
                    inject = proxy.left is None or proxy.left > 0
                    if inject and proxy.left is not None:
                        proxy.left -= 1
                if inject:
                    self.send_response(proxy.status)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP | {"host"}}
                answer = requests.request(self.command, f"http://{proxy.upstream}{self.path}", headers=headers,
                                          data=body, allow_redirects=False, timeout=10)
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
