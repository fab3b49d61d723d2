"""A real local OTLP receiver for the tests: HTTP (protobuf, JSON, gzip) and gRPC, on 127.0.0.1.

It decodes what really arrives on the wire (opentelemetry-proto) and keeps the spans as plain
dicts (see otlp_decode), every request's headers, status and span count, and any decoding error.
Controls, for the failure paths of an exporter:

    fail_next(n, status=503, retry_after=None)  answer the next n export requests with an error
    hang()                                      accept requests, never answer them (until unhang/stop)
    stop() / start()                            close the port (connections refused) / open it again

wait_for(count or predicate, timeout) blocks until enough spans arrived; settle() until no request
came for a while. Every method is thread-safe: requests are handled on server threads.
"""

from __future__ import annotations

import gzip
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Union

import grpc
import otlp_decode
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

Spans = list[dict[str, Any]]
Expectation = Union[int, Callable[[Spans], Any]]

# How an HTTP status a test asks for is said over gRPC.
_GRPC_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.UNIMPLEMENTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


class Receiver:
    """What both transports share: the store of what arrived and the failure controls."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._spans: Spans = []
        self._metrics: list[dict[str, Any]] = []
        self._requests: list[dict[str, Any]] = []
        self._errors: list[str] = []
        self._fail_left = 0
        self._fail_status = 503
        self._fail_retry_after: float | None = None
        self._hanging = False
        # Set to let hung handlers go (unhang, stop); a fresh event per hang() call.
        self._release = threading.Event()
        self.port = 0

    # ---- controls ------------------------------------------------------------------------
    def fail_next(self, n: int, status: int = 503, retry_after: float | None = None) -> None:
        with self._cond:
            self._fail_left = n
            self._fail_status = status
            self._fail_retry_after = retry_after

    def hang(self) -> None:
        with self._cond:
            self._hanging = True
            self._release = threading.Event()

    def unhang(self) -> None:
        with self._cond:
            self._hanging = False
            self._release.set()

    def clear(self) -> None:
        with self._cond:
            self._spans.clear()
            self._metrics.clear()
            self._requests.clear()
            self._errors.clear()

    # ---- what arrived --------------------------------------------------------------------
    @property
    def spans(self) -> Spans:
        with self._cond:
            return list(self._spans)

    @property
    def metrics(self) -> list[dict[str, Any]]:
        with self._cond:
            return list(self._metrics)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request, answered or not: signal, path, headers (lower-case names), status, spans
        (how many), resource_spans (how many ResourceSpans, for a decoded trace request), time
        (monotonic) and wall (time.time()) of its arrival, and body (its bytes, decompressed), for
        the tests that search everything that left the process."""
        with self._cond:
            return [dict(r) for r in self._requests]

    @property
    def request_count(self) -> int:
        with self._cond:
            return len(self._requests)

    @property
    def errors(self) -> list[str]:
        """Requests that could not be decoded (a bug of the sender), as messages."""
        with self._cond:
            return list(self._errors)

    def trace_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["signal"] == "traces"]

    def wait_for(self, what: Expectation, timeout: float = 10.0) -> Spans:
        """Wait until `what` (a span count, or a predicate over the spans) holds; the spans then.
        On timeout, an AssertionError describing what did arrive."""
        predicate = (lambda spans: len(spans) >= what) if isinstance(what, int) else what
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(list(self._spans)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {what!r} at the {type(self).__name__}: "
                        f"{len(self._spans)} spans in {len(self._requests)} requests arrived "
                        f"(names {sorted({s['name'] for s in self._spans})[:20]}, "
                        f"statuses {[r['status'] for r in self._requests][:20]}, errors {self._errors[:3]})"
                    )
                self._cond.wait(min(left, 0.1))
            return list(self._spans)

    def settle(self, quiet: float = 0.3, timeout: float = 5.0) -> Spans:
        """Wait until no request has come for `quiet` seconds (for asserting that nothing more comes)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                last = max((r["time"] for r in self._requests), default=0.0)
                now = time.monotonic()
                if now - last >= quiet or now >= deadline:
                    return list(self._spans)
                self._cond.wait(quiet - (now - last))

    # ---- used by the transports ----------------------------------------------------------
    def _admit(self, record: dict[str, Any]) -> tuple[str, int, float | None, threading.Event]:
        """Record a request; decide its fate: ("ok", 200), ("fail", status, retry_after) or ("hang")."""
        with self._cond:
            record["time"] = time.monotonic()
            record["wall"] = time.time()
            self._requests.append(record)
            self._cond.notify_all()
            if self._hanging:
                record["status"] = "hung"
                return "hang", 0, None, self._release
            if self._fail_left > 0:
                self._fail_left -= 1
                record["status"] = self._fail_status
                return "fail", self._fail_status, self._fail_retry_after, self._release
            record["status"] = 200
            return "ok", 200, None, self._release

    def _accept(self, spans: Spans | None = None, metrics: dict[str, Any] | None = None) -> None:
        with self._cond:
            if spans:
                self._spans.extend(spans)
            if metrics is not None:
                self._metrics.append(metrics)
            self._cond.notify_all()

    def _error(self, record: dict[str, Any], message: str) -> None:
        with self._cond:
            record["time"] = time.monotonic()
            record["wall"] = time.time()
            record["status"] = 400
            record["error"] = message
            self._requests.append(record)
            self._errors.append(message)
            self._cond.notify_all()


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], receiver: HttpReceiver) -> None:
        self.receiver = receiver
        # Open connections, closed by stop(): a stopped receiver must not go on answering on a
        # kept-alive connection the exporter pooled.
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self):
        conn, addr = super().get_request()
        with self.connections_lock:
            self.connections.add(conn)
        return conn, addr

    def shutdown_request(self, request):
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            conns = list(self.connections)
            self.connections.clear()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as OTLP exporters use it
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/x-protobuf",
        retry_after: float | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if retry_after is not None:
            self.send_header("Retry-After", f"{retry_after:g}")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        receiver = self.server.receiver
        headers = {k.lower(): v for k, v in self.headers.items()}
        signal = {"/v1/traces": "traces", "/v1/metrics": "metrics"}.get(self.path.split("?")[0])
        raw = self._read_body()
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        encoding = headers.get("content-encoding", "").lower()
        is_json = content_type == "application/json"
        record: dict[str, Any] = {
            "signal": signal,
            "path": self.path,
            "headers": headers,
            "content_type": content_type,
            "content_encoding": encoding,
            "bytes": len(raw),
            "spans": 0,
        }
        try:
            if signal is None:
                raise ValueError(f"POST to unknown path {self.path}")
            if content_type not in ("application/x-protobuf", "application/json"):
                raise ValueError(f"unexpected Content-Type {headers.get('content-type')!r}")
            if encoding == "gzip":
                body = gzip.decompress(raw)
            elif encoding == "deflate":
                body = zlib.decompress(raw)
            elif encoding in ("", "identity"):
                body = raw
            else:
                raise ValueError(f"unsupported Content-Encoding {encoding!r}")
            record["body"] = body
            if signal == "traces":
                request = (
                    otlp_decode.trace_request_from_json(body)
                    if is_json
                    else otlp_decode.trace_request_from_protobuf(body)
                )
                spans, metrics = otlp_decode.spans_of(request), None
            else:
                spans, metrics = None, otlp_decode.metrics_request(body, is_json)
        except Exception as exc:  # noqa: BLE001 - any decoding failure is the sender's fault
            receiver._error(record, f"{type(exc).__name__}: {exc}")
            self._reply(400, str(exc).encode(), "text/plain")
            return
        record["spans"] = len(spans or ())
        if signal == "traces":
            record["resource_spans"] = len(request.resource_spans)
        fate, status, retry_after, release = receiver._admit(record)
        if fate == "hang":
            release.wait()  # until unhang() or stop(); then the connection is dropped unanswered
            self.close_connection = True
            return
        if fate == "fail":
            self._reply(status, b"", "text/plain", retry_after)
            return
        receiver._accept(spans, metrics)
        if is_json:
            self._reply(200, b"{}", "application/json")
        elif signal == "traces":
            self._reply(200, trace_service_pb2.ExportTraceServiceResponse().SerializeToString())
        else:
            self._reply(200, metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString())


class HttpReceiver(Receiver):
    """OTLP/HTTP on 127.0.0.1: POST /v1/traces and /v1/metrics, protobuf or JSON, gzip or not."""

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        """`tls`: (certificate file, key file) to serve https on localhost instead of http."""
        super().__init__()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._tls = tls

    @property
    def endpoint(self) -> str:
        """The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes it."""
        if self._tls:
            return f"https://localhost:{self.port}"
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_url(self) -> str:
        return f"{self.endpoint}/v1/traces"

    def start(self) -> HttpReceiver:
        """Listen (on the port of a previous start, so a restart brings the same receiver back)."""
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = self._server.server_address[1]
        if self._tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self._tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="otlp-http-receiver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port and every open connection; hung requests are let go unanswered."""
        server, self._server = self._server, None
        if server is None:
            return
        with self._cond:
            self._release.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(5)


# ---------------------------------------------------------------------------------------------
# gRPC
# ---------------------------------------------------------------------------------------------


class _GrpcService:
    def __init__(self, receiver: GrpcReceiver) -> None:
        self.receiver = receiver

    def _handle(self, context: grpc.ServicerContext, record: dict[str, Any]) -> None:
        """Admit the request; when it is not to be accepted, end the call here (abort raises)."""
        fate, status, _, release = self.receiver._admit(record)
        if fate == "hang":
            release.wait()
            context.abort(grpc.StatusCode.UNAVAILABLE, "receiver stopped while hanging")
        if fate == "fail":
            code = (
                status
                if isinstance(status, grpc.StatusCode)
                else _GRPC_CODES.get(status, grpc.StatusCode.UNKNOWN)
            )
            context.abort(code, f"told to fail ({status})")


class _TraceService(_GrpcService, trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request, context):
        spans = otlp_decode.spans_of(request)
        record = {
            "signal": "traces",
            "path": "TraceService/Export",
            "spans": len(spans),
            "resource_spans": len(request.resource_spans),
            "headers": {k.lower(): v for k, v in context.invocation_metadata()},
            "content_type": "application/grpc",
            "content_encoding": "",
            "bytes": request.ByteSize(),
        }
        self._handle(context, record)
        self.receiver._accept(spans, None)
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsService(_GrpcService, metrics_service_pb2_grpc.MetricsServiceServicer):
    def Export(self, request, context):
        from google.protobuf import json_format

        record = {
            "signal": "metrics",
            "path": "MetricsService/Export",
            "spans": 0,
            "headers": {k.lower(): v for k, v in context.invocation_metadata()},
            "content_type": "application/grpc",
            "content_encoding": "",
            "bytes": request.ByteSize(),
        }
        self._handle(context, record)
        self.receiver._accept(None, json_format.MessageToDict(request))
        return metrics_service_pb2.ExportMetricsServiceResponse()


class GrpcReceiver(Receiver):
    """OTLP/gRPC on 127.0.0.1: TraceService/Export and MetricsService/Export (gzip accepted)."""

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        """`tls`: (certificate file, key file) to serve TLS on localhost."""
        super().__init__()
        self._server: grpc.Server | None = None
        self._tls = tls

    @property
    def endpoint(self) -> str:
        if self._tls:
            return f"https://localhost:{self.port}"
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GrpcReceiver:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="otlp-grpc-receiver")
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsService(self), server)
        if self._tls:
            cert, key = (Path(f).read_bytes() for f in self._tls)
            credentials = grpc.ssl_server_credentials([(key, cert)])
            port = server.add_secure_port(f"127.0.0.1:{self.port}", credentials)
        else:
            port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        if port == 0:
            raise OSError(f"gRPC receiver could not listen on 127.0.0.1:{self.port}")
        self.port = port
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        with self._cond:
            self._release.set()
        server.stop(grace=None).wait(5)
