"""A small HTTP front for a moto server: forwards every AWS call, and adds what moto lacks.

- Throttling on demand: the next N calls of an action (e.g. ``DescribeInstanceTypeOfferings``) get the
  error AWS sends when it throttles (EC2 ``RequestLimitExceeded`` with HTTP 503, ``ThrottlingException``
  for JSON APIs, ``Throttling`` for STS). moto never throttles, so the tests produce it here, in front
  of it, and count what was throttled and what reached moto.
- Expired credentials on demand (``config.expired``): every call gets AWS's ``ExpiredToken`` refusal,
  which moto (accepting any credentials) never sends.
- EC2 vCPU quotas: moto's Service Quotas knows only VPC quotas, so ``GetServiceQuota`` for
  ``ServiceCode=ec2`` is answered from a seeded table (an unseeded code gets the same
  ``NoSuchResourceException`` AWS sends for a quota without an applied value).

Configured in-process (``front.config``) or, for molecule, from the command line:
``python aws_front.py --upstream http://127.0.0.1:5000 --port 5001 --quota L-F7808C92=512``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


@dataclass
class FrontConfig:
    quotas: dict[str, float] = field(default_factory=dict)  # ec2 quota code -> applied value
    throttle: dict[str, int] = field(default_factory=dict)  # action -> calls still to throttle
    expired: bool = False  # every call is refused as made with expired credentials
    throttled: Counter[str] = field(default_factory=Counter)
    forwarded: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.quotas.clear()
            self.throttle.clear()
            self.throttled.clear()
            self.forwarded.clear()
            self.expired = False


def action_of(headers: dict[str, str], path: str, body: bytes) -> tuple[str, str]:
    """(protocol, action) of a request: query (EC2, STS), json (X-Amz-Target) or rest (EKS)."""
    target = headers.get("x-amz-target")
    if target:
        return "json", target.rsplit(".", 1)[-1]
    if body and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = urllib.parse.parse_qs(body.decode(errors="replace"))
        if "Action" in form:
            return "query", form["Action"][0]
    return "rest", path.split("?", 1)[0]


def throttling_reply(protocol: str, action: str, service: str) -> tuple[int, dict[str, str], bytes]:
    if protocol == "query" and service == "sts":
        body = (b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded"
                b"</Message></Error><RequestId>throttled</RequestId></ErrorResponse>")
        return 400, {"Content-Type": "text/xml"}, body
    if protocol == "query":
        body = (b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
                b"</Message></Error></Errors><RequestID>throttled</RequestID></Response>")
        return 503, {"Content-Type": "text/xml"}, body
    body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
    return 400, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": "ThrottlingException"}, body


def expired_reply(protocol: str) -> tuple[int, dict[str, str], bytes]:
    """What AWS answers a call signed with expired session credentials (not retried by botocore)."""
    if protocol == "query":
        body = (b"<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code><Message>The security token "
                b"included in the request is expired</Message></Error><RequestId>expired</RequestId></ErrorResponse>")
        return 403, {"Content-Type": "text/xml"}, body
    body = json.dumps({"__type": "ExpiredTokenException",
                       "message": "The security token included in the request is expired"}).encode()
    return 403, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": "ExpiredTokenException"}, body


class Front(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, upstream: str, config: FrontConfig | None = None) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.config = config or FrontConfig()
        super().__init__(("127.0.0.1", port), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Front
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        protocol, action = action_of(headers, self.path, body)
        credential = headers.get("authorization", "").split("Credential=", 1)[-1].split("/")
        service = credential[3] if len(credential) > 3 else ""
        config = self.server.config
        with config.lock:
            if config.expired:
                reply = expired_reply(protocol)
            elif config.throttle.get(action, 0) > 0:
                config.throttle[action] -= 1
                config.throttled[action] += 1
                reply = throttling_reply(protocol, action, service)
            elif action == "GetServiceQuota" and json.loads(body or b"{}").get("ServiceCode") == "ec2":
                config.forwarded[action] += 1
                reply = self._quota(json.loads(body))
            else:
                config.forwarded[action] += 1
                reply = None
        self._reply(*(reply or self._forward(body)))

    def _quota(self, request: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        code = request.get("QuotaCode", "")
        value = self.server.config.quotas.get(code)
        if value is None:
            body = {"__type": "NoSuchResourceException", "message": f"The quota {code} has no applied value."}
            return 400, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(body).encode()
        quota = {"ServiceCode": "ec2", "QuotaCode": code, "QuotaName": code, "Value": value, "Unit": "None",
                 "Adjustable": True, "GlobalQuota": False}
        return 200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps({"Quota": quota}).encode()

    def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        upstream = self.server.upstream
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        headers = {key: value for key, value in self.headers.items() if key.lower() not in HOP_BY_HOP}
        try:
            connection.request(self.command, self.path, body=body or None, headers=headers)
            response = connection.getresponse()
            data = response.read()
            reply_headers = {key: value for key, value in response.getheaders()
                             if key.lower() not in HOP_BY_HOP | {"content-length"}}
            return response.status, reply_headers, data
        finally:
            connection.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="moto server URL")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--quota", action="append", default=[], metavar="CODE=VALUE",
                        help="applied EC2 quota to answer GetServiceQuota with (repeatable)")
    args = parser.parse_args()
    front = Front(args.port, args.upstream)
    for item in args.quota:
        code, value = item.split("=", 1)
        front.config.quotas[code] = float(value)
    front.serve_forever()


if __name__ == "__main__":
    main()
