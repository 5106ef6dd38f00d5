"""The HTTP transport: a threaded HTTP/1.1 server that hands each request to the sandbox.

It accepts any Host header (so clients can be pointed at it as ``api.kustomerapp.com``,
``api.prod2.kustomerapp.com`` or ``<org>.api.kustomerapp.com`` through a proxy; absolute-form request
targets are understood), keeps connections alive like Kustomer's load balancer, refuses bodies over
100 KB with 413, and carries out the transport-level faults: delayed answers, connection resets,
hung requests and truncated bodies.
"""

from __future__ import annotations

import io
import json
import math
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Dict, List, Tuple
from urllib.parse import parse_qsl, urlsplit

from .api import MAX_BODY_BYTES, Reply, error_body, reason

if TYPE_CHECKING:  # pragma: no cover
    from .sandbox import Sandbox

#: Largest body read (and discarded) before answering 413 on the same connection.
_DRAIN_LIMIT = 8 * 1024 * 1024


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: Tuple[str, int], sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
        self.connections: set = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a killed sync) is no error of the sandbox's: nothing to print."""
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Ends every open keep-alive connection (used on stop, so no handler thread lingers)."""
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "KustomerSandbox/1.0"
    server: SandboxHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle plus delayed ACKs add ~40 ms
        # to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler's signature
        if self.server.sandbox.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- request ----------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        sandbox = self.server.sandbox
        target = self.path
        if target.startswith(("http://", "https://")):
            parts = urlsplit(target)
            target = parts.path + ("?" + parts.query if parts.query else "")
        path, _, query = target.partition("?")
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        params: List[Tuple[str, str]] = parse_qsl(query, keep_blank_values=True)

        if path.startswith("/__sandbox"):
            body, _too_big = self._read_body(_DRAIN_LIMIT)
            self._send(sandbox.admin(method, path, params, body))
            return

        number, fault = sandbox.begin_request()
        body, too_big = self._read_body(MAX_BODY_BYTES)
        if too_big == "cut":
            # The client went away mid-request (a killed sync): nothing was asked, so nothing is
            # answered, logged or checked against the contract.
            self.close_connection = True
            return
        sandbox.sleep_latency()
        if fault == "reset":
            sandbox.log_request(method, target, "reset", fault)
            self._reset()
            return
        if fault == "timeout":
            sandbox.log_request(method, target, "timeout", fault)
            sandbox.hold()
            self.close_connection = True
            return
        if fault is not None and fault not in _PAGE_FAULTS:
            reply = _fault_reply(fault, target, sandbox)
        elif too_big:
            reply = Reply(413, error_body(413, "payload_too_large", "Request body exceeds 100 KB", sandbox.options.error_format),
                          close=too_big == "unread")
        else:
            reply = sandbox.api.handle(method, path, params, self.headers, body)
        if fault == "short" and reply.status == 200 and isinstance(reply.body, dict) and isinstance(reply.body.get("data"), list) \
                and (reply.body.get("links") or {}).get("next"):
            kept = reply.body["data"][: len(reply.body["data"]) // 2]
            reply = Reply(reply.status, {**reply.body, "data": kept}, reply.headers, reply.close)
        data = self._encode(reply)
        if fault == "malformed" and reply.status == 200:
            data = data[: max(1, len(data) // 2)]
        if fault == "not-json" and reply.status == 200:
            data = _HTML_PAGE
        sandbox.log_request(method, target, reply.status, fault)
        self._send(reply, data)

    def _read_body(self, limit: int) -> Tuple[bytes, object]:
        """The request body, and whether it was over ``limit`` (``"unread"`` if too big to drain,
        ``"cut"`` if the client closed the connection before sending all of it)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, size = [], 0
            while True:
                line = self.rfile.readline(65537)
                length = int(line.split(b";")[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunk = self.rfile.read(length)
                self.rfile.readline(65537)
                size += length
                if size <= limit:
                    chunks.append(chunk)
            return b"".join(chunks), size > limit
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > _DRAIN_LIMIT:
            return b"", "unread"
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:
            return body, "cut"
        return body, len(body) > limit

    # --- response ---------------------------------------------------------------------------
    @staticmethod
    def _encode(reply: Reply) -> bytes:
        if reply.body is None:
            return b""
        if isinstance(reply.body, bytes):
            return reply.body
        return json.dumps(reply.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def _send(self, reply: Reply, data: bytes = None) -> None:
        if data is None:
            data = self._encode(reply)
        try:
            self.send_response(reply.status, reason(reply.status))
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            headers: Dict[str, str] = reply.headers
            for name, value in headers.items():
                self.send_header(name, value)
            if reply.close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _reset(self) -> None:
        """Drops the connection with a TCP RST: no status line, no body."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()  # the last reference besides the socket itself
        except OSError:
            pass
        # The base class still flushes and closes these after the handler returns.
        self.rfile, self.wfile = io.BytesIO(), io.BytesIO()
        try:
            self.connection.close()
        except OSError:
            pass


_FAULT_CODES = {
    429: "rate_limit_exceeded", 500: "internal_server_error", 502: "bad_gateway", 503: "service_unavailable", 504: "gateway_timeout",
}
#: Faults that spoil a real answer instead of replacing it.
_PAGE_FAULTS = ("malformed", "not-json", "short")
_HTML_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>"


def _fault_reply(fault: str, target: str, sandbox: "Sandbox") -> Reply:
    """The answer that replaces the real one for a status-code fault (see ``faults``)."""
    if fault == "redirect":
        return Reply(302, None, {"Location": sandbox.redirect_to.rstrip("/") + target})
    status = int(fault.split("-")[0])
    if fault.endswith(("-nobody", "-bare")):
        return Reply(status, None)
    if fault.endswith("-html"):
        return Reply(status, _HTML_PAGE)
    headers: Dict[str, str] = {}
    if status == 429:
        reset = time.time() + sandbox.fault_reset_s
        headers = {"x-ratelimit-limit": "1000", "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(math.ceil(reset))}
    return Reply(status, error_body(status, _FAULT_CODES[status], reason(status), sandbox.options.error_format), headers)
