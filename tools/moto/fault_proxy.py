#!/usr/bin/env python3
"""Loopback HTTP proxy between the AWS SDK and moto that injects AWS's throttling and 5xx errors.

Usage: python tools/moto/fault_proxy.py --upstream http://127.0.0.1:PORT [--port 0]
       [--throttle 0.2] [--server-error 0.05] [--latency-ms 50] [--seed N]

Once bound it prints exactly one line, `edgeplan-fault-proxy listening on http://HOST:PORT`, then
serves until SIGTERM/SIGINT or until stdin reaches EOF (keep stdin a pipe from the parent).

Every request is forwarded unchanged and so is the response, except that, with the given
probabilities, a request is answered with an error *instead of* being forwarded: like AWS's
throttling, an injected failure never executes. Errors have the real wire shape of the service,
told apart by the `Version` form field. `/moto-api/` requests always pass, with no delay.

Control: GET /fault-proxy/stats, POST /fault-proxy/reset (zero the counters),
POST /fault-proxy/config with JSON {"throttle": p, "server_error": p, "latency_ms": ms}.
"""

import argparse
import http.client
import json
import random
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lifetime import exit_on_signal, exit_on_stdin_eof

EC2_VERSION = "2016-11-15"
# awsquery services: the error document's namespace is the service's own.
QUERY_NAMESPACES = {
    "2015-12-01": "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",  # ELBv2
    "2010-05-08": "https://iam.amazonaws.com/doc/2010-05-08/",  # IAM
}
# (HTTP status, code, message, awsquery fault type)
THROTTLE_EC2 = (503, "RequestLimitExceeded", "Request limit exceeded.", None)
THROTTLE_QUERY = (400, "Throttling", "Rate exceeded", "Sender")
SERVER_ERRORS = (
    (500, "InternalError", "An internal error has occurred.", "Receiver"),
    (503, "ServiceUnavailable", "Service is unavailable.", "Receiver"),
)
# Not forwarded: they describe one connection, not the request.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


class Faults:
    """Rates, counters and the seeded RNG, shared by all request threads."""

    def __init__(self, throttle, server_error, latency_ms, seed):
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.throttle = throttle
        self.server_error = server_error
        self.latency_ms = latency_ms
        self.reset()

    def reset(self):
        with self.lock:
            self.requests = 0
            self.throttled = 0
            self.server_errors = 0
            self.by_action = {}

    def configure(self, changes):
        with self.lock:
            self.throttle = float(changes.get("throttle", self.throttle))
            self.server_error = float(changes.get("server_error", self.server_error))
            self.latency_ms = float(changes.get("latency_ms", self.latency_ms))
            return self.config()

    def config(self):
        return {
            "throttle": self.throttle,
            "server_error": self.server_error,
            "latency_ms": self.latency_ms,
        }

    def stats(self):
        with self.lock:
            return {
                "requests": self.requests,
                "throttled": self.throttled,
                "server_errors": self.server_errors,
                "by_action": dict(self.by_action),
            }

    def draw(self, action, version):
        """Count the request; return the injected error (status, code, message, type), if any."""
        with self.lock:
            self.requests += 1
            self.by_action[action] = self.by_action.get(action, 0) + 1
            if version != EC2_VERSION and version not in QUERY_NAMESPACES:
                return None  # unknown protocol: no error shape to fake
            roll = self.rng.random()
            if roll < self.throttle:
                self.throttled += 1
                return THROTTLE_EC2 if version == EC2_VERSION else THROTTLE_QUERY
            if roll < self.throttle + self.server_error:
                self.server_errors += 1
                return self.rng.choice(SERVER_ERRORS)
            return None


def error_body(version, code, message, fault_type):
    request_id = str(uuid.uuid4())
    if version == EC2_VERSION:
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error>"
            f"</Errors><RequestID>{request_id}</RequestID></Response>"
        )
    else:
        body = (
            f'<ErrorResponse xmlns="{QUERY_NAMESPACES[version]}"><Error><Type>{fault_type}</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    return request_id, ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()


def form_fields(query, body, content_type):
    """Action and Version: in the form body (POST, as the SDKs send them) or the query string."""
    fields = urllib.parse.parse_qs(query)
    if content_type.startswith("application/x-www-form-urlencoded"):
        fields.update(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
    return fields.get("Action", ["?"])[0], fields.get("Version", ["?"])[0]


class Handler(BaseHTTPRequestHandler):
    # Keep-alive for the SDK's connection pool; every response carries a Content-Length.
    protocol_version = "HTTP/1.1"
    server_version = "edgeplan-fault-proxy"

    def log_message(self, format, *args):
        pass  # nobody reads a per-request log on a pipe

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def do_HEAD(self):
        self.handle_any()

    def handle_any(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.reply(501, "text/plain", b"chunked request bodies are not supported\n")
            self.close_connection = True
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path, _, query = self.path.partition("?")
        faults = self.server.faults
        if path.startswith("/fault-proxy/"):
            self.control(path, body, faults)
            return
        if not path.startswith("/moto-api/"):
            action, version = form_fields(query, body, self.headers.get("Content-Type", ""))
            injected = faults.draw(action, version)
            if faults.latency_ms > 0:
                time.sleep(faults.latency_ms / 1000)
            if injected is not None:
                status, code, message, fault_type = injected
                request_id, payload = error_body(version, code, message, fault_type)
                self.reply(status, "text/xml", payload, {"x-amzn-RequestId": request_id})
                return
        self.forward(body)

    def control(self, path, body, faults):
        if path == "/fault-proxy/stats" and self.command == "GET":
            result = faults.stats()
        elif path == "/fault-proxy/reset" and self.command == "POST":
            faults.reset()
            result = faults.stats()
        elif path == "/fault-proxy/config" and self.command == "POST":
            try:
                result = faults.configure(json.loads(body or b"{}"))
            except (ValueError, TypeError, AttributeError) as err:
                self.reply(400, "text/plain", f"bad config: {err}\n".encode())
                return
        else:
            self.reply(404, "text/plain", b"unknown fault-proxy endpoint\n")
            return
        self.reply(200, "application/json", json.dumps(result).encode())

    def forward(self, body):
        try:
            status, reason, headers, payload = self.server.upstream(self, body)
        except (OSError, http.client.HTTPException) as err:
            self.reply(502, "text/plain", f"upstream unreachable: {err}\n".encode())
            return
        # send_response_only: moto's own Server and Date headers are the ones to pass on.
        self.send_response_only(status, reason)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def reply(self, status, content_type, payload, extra=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


class Upstream:
    """One keep-alive connection to moto per proxy thread."""

    def __init__(self, url):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"--upstream must be http://HOST:PORT, not {url!r}")
        self.host = parsed.hostname
        self.port = parsed.port or 80
        self.local = threading.local()

    def __call__(self, request, body):
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            try:
                return self.send(conn, request, body)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # moto closed the idle keep-alive connection before reading the request: the
                # request did not run, so sending it again on a new connection is safe.
                conn.close()
        conn = self.local.conn = http.client.HTTPConnection(self.host, self.port)
        try:
            return self.send(conn, request, body)
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            raise

    @staticmethod
    def send(conn, request, body):
        # The SDK's Host header and every other header go through as they came.
        conn.putrequest(request.command, request.path, skip_host=True, skip_accept_encoding=True)
        for name, value in request.headers.items():
            if name.lower() not in HOP_BY_HOP:
                conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.reason, response.getheaders(), response.read()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The SDK opens many connections at once; the default backlog of 5 would refuse some.
    request_queue_size = 128


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="moto's URL, http://127.0.0.1:PORT")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--throttle", type=float, default=0.0, help="probability, 0..1")
    parser.add_argument("--server-error", type=float, default=0.0, help="probability, 0..1")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before each call")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault RNG")
    args = parser.parse_args()

    server = Server((args.host, args.port), Handler)
    server.upstream = Upstream(args.upstream)
    server.faults = Faults(args.throttle, args.server_error, args.latency_ms, args.seed)
    exit_on_signal()
    exit_on_stdin_eof("edgeplan-fault-proxy")
    port = server.server_address[1]
    print(f"edgeplan-fault-proxy listening on http://{args.host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
