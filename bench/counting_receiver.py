#!/usr/bin/env python3
"""A fast OTLP/HTTP receiver that counts the spans it is sent, for the export benchmarks.

  serve      listen on 127.0.0.1 (a free port unless --port); print "READY <port>" once listening.
             POST <any path>  an ExportTraceServiceRequest (protobuf; gzip/deflate bodies too):
                              counted, answered 200 with an empty ExportTraceServiceResponse
             GET  /stats      JSON: requests, bytes, spans, decode_errors, validated, cpu_s, ...
             POST /reset      zero the counters
  capacity   start a receiver, replay one request body over keep-alive connections from this
             (another) process as fast as it answers, and report requests/s and spans/s: the
             most this receiver can take on this machine, to compare with what the exporters reach.

Decoding (--decode), in the protobuf runtime's C backend (upb):
  full     parse the whole ExportTraceServiceRequest with opentelemetry-proto: every span, every
           attribute (what a collector does; about 1 us of receiver CPU per 10-attribute span)
  shallow  parse only the three outer levels (resource_spans / scope_spans / spans, each span
           kept as bytes): the exact span count at ~1/8 of full's CPU per span (HTTP included),
           so that on a 2-core machine the receiver takes little from the exporter it measures.
           --validate-every K also parses every K-th request fully and counts a decode error if
           the two counts differ (or the full parse fails).
  none     count requests and bytes only

HTTP/1.1 with keep-alive, Content-Length or chunked bodies; raw asyncio protocol, no framework,
so one request costs tens of microseconds of Python.

  python bench/counting_receiver.py serve --decode full
  python bench/counting_receiver.py capacity --duration 5 --connections 4
  python bench/counting_receiver.py capacity --body /tmp/llmprobe-bench-body.bin
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import ATTRS, SPAN_NAME, Receiver, clean_env, loadavg

STATS: dict = {}
OK_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n"
    b"connection: keep-alive\r\n\r\n"
)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"


def _reset_stats() -> None:
    STATS.update(
        requests=0,
        bytes=0,
        spans=0,
        decode_errors=0,
        validated=0,
        connections=0,
        first_post=None,
        last_post=None,
        reset_at=time.time(),
        cpu_at_reset=_cpu(),
    )


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------------------------------------
# span counting
# ---------------------------------------------------------------------------------------------
def full_request_class():
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    return ExportTraceServiceRequest


def shallow_request_class():
    """ExportTraceServiceRequest with the same field numbers down to the spans, each span bytes."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(
        name="llmprobe_bench_shallow_otlp.proto", package="llmprobe_bench_shallow", syntax="proto3"
    )

    def message(name: str, number: int, child: str, ftype: int, type_name: str = "") -> None:
        m = fdp.message_type.add(name=name)
        f = m.field.add(name=child, number=number, label=field.LABEL_REPEATED, type=ftype)
        if type_name:
            f.type_name = type_name

    # ExportTraceServiceRequest.resource_spans = 1; ResourceSpans.scope_spans = 2; ScopeSpans.spans = 2
    message("Request", 1, "resource_spans", field.TYPE_MESSAGE, ".llmprobe_bench_shallow.ResourceSpans")
    message("ResourceSpans", 2, "scope_spans", field.TYPE_MESSAGE, ".llmprobe_bench_shallow.ScopeSpans")
    message("ScopeSpans", 2, "spans", field.TYPE_BYTES)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("llmprobe_bench_shallow.Request"))


def count_spans(cls, body: bytes) -> int:
    msg = cls.FromString(body)
    return sum(len(ss.spans) for rs in msg.resource_spans for ss in rs.scope_spans)


class Counter:
    """Turns a request body into a span count, as --decode says."""

    def __init__(self, decode: str, validate_every: int) -> None:
        self.decode = decode
        self.validate_every = validate_every if decode == "shallow" else 0
        self.full = full_request_class() if decode == "full" or self.validate_every else None
        self.shallow = shallow_request_class() if decode == "shallow" else None
        # Import and build the classes before READY, so the first request pays nothing extra.
        if self.full is not None:
            count_spans(self.full, b"")
        if self.shallow is not None:
            count_spans(self.shallow, b"")

    def count(self, body: bytes, nth: int) -> int:
        if self.decode == "none":
            return 0
        if self.decode == "full":
            return count_spans(self.full, body)
        n = count_spans(self.shallow, body)
        if self.validate_every and nth % self.validate_every == 1 % self.validate_every:
            STATS["validated"] += 1
            if count_spans(self.full, body) != n:
                raise ValueError("full and shallow span counts differ")
        return n


# ---------------------------------------------------------------------------------------------
# HTTP/1.1 server
# ---------------------------------------------------------------------------------------------
class Connection(asyncio.BufferedProtocol):
    """One keep-alive connection. The socket is read straight into one growing buffer (no copy
    per read, one slice per body), so a 250 KB request costs little more than its parse."""

    counter: Counter
    capture: str | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.data = bytearray(1 << 20)
        self.view = memoryview(self.data)
        self.filled = 0
        self.scanned = 0  # where the search for the end of the head resumes
        self.head = None  # (method, path, headers, body start) of the request being read
        STATS["connections"] += 1

    def get_buffer(self, sizehint: int) -> memoryview:
        if len(self.data) - self.filled < max(sizehint, 1 << 16):
            self.view.release()
            self.data.extend(bytes(len(self.data)))  # double it
            self.view = memoryview(self.data)
        return self.view[self.filled :]

    def buffer_updated(self, nbytes: int) -> None:
        self.filled += nbytes
        while self._one_request():
            pass

    def _one_request(self) -> bool:
        """Handle one complete request from the buffer; False when more bytes are needed."""
        if self.head is None:
            end = self.data.find(b"\r\n\r\n", max(0, self.scanned - 3), self.filled)
            if end < 0:
                self.scanned = self.filled
                return False
            lines = bytes(self.view[:end]).decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            self.head = (method, path, headers, end + 4)
        method, path, headers, start = self.head
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parsed = _dechunk(self.data, start, self.filled)
            if parsed is None:
                return False
            body, consumed = parsed
        else:
            length = int(headers.get("content-length", "0"))
            if self.filled < start + length:
                return False
            body, consumed = self.view[start : start + length], start + length
        try:
            self.handle(method, path, headers, body)
        finally:
            if isinstance(body, memoryview):
                body.release()
        # Keep what follows (a pipelined next request; rare): move it to the front.
        rest = self.filled - consumed
        if rest:
            self.data[:rest] = self.view[consumed : self.filled]
        self.filled = rest
        self.scanned = 0
        self.head = None
        return True

    def handle(self, method: str, path: str, headers: dict, body) -> None:
        if path == "/stats":
            out = dict(STATS, cpu_s=_cpu() - STATS["cpu_at_reset"], uptime_s=time.time() - STATS["reset_at"])
            out["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            out["decode"] = self.counter.decode
            data = json.dumps(out).encode()
            self.transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(data)
                + data
            )
            return
        if path == "/reset":
            _reset_stats()
            self.transport.write(OK_RESPONSE)
            return
        if method != "POST":
            self.transport.write(NOT_FOUND)
            return
        now = time.time()
        STATS["requests"] += 1
        STATS["bytes"] += len(body)
        STATS["first_post"] = STATS["first_post"] or now
        STATS["last_post"] = now
        try:
            encoding = headers.get("content-encoding", "")
            if encoding == "gzip":
                body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            spans = self.counter.count(body, STATS["requests"])
            STATS["spans"] += spans
            if Connection.capture and spans:
                with open(Connection.capture, "wb") as f:
                    f.write(body)
                Connection.capture = None  # the first request with spans is enough
        except Exception:  # noqa: BLE001 - a bad body is counted, never fatal
            STATS["decode_errors"] += 1
        if headers.get("connection", "").lower() == "close":
            self.transport.write(OK_RESPONSE.replace(b"keep-alive", b"close"))
            self.transport.close()
        else:
            self.transport.write(OK_RESPONSE)


def _dechunk(buf: bytearray, start: int, filled: int):
    """(body, bytes consumed) of a complete chunked body starting at `start`, or None."""
    body = bytearray()
    pos = start
    while True:
        line_end = buf.find(b"\r\n", pos, filled)
        if line_end < 0:
            return None
        size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n\r\n", pos - 2, filled)
            return (bytes(body), trailer_end + 4) if trailer_end >= 0 else None
        if filled < pos + size + 2:
            return None
        body += buf[pos : pos + size]
        pos += size + 2


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Connection, "127.0.0.1", port, backlog=128)
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def cmd_serve(a) -> None:
    Connection.counter = Counter(a.decode, a.validate_every)
    Connection.capture = a.capture
    _reset_stats()
    asyncio.run(_serve(a.port))


# ---------------------------------------------------------------------------------------------
# capacity: replay one body as fast as the receiver answers
# ---------------------------------------------------------------------------------------------
def synthetic_body(spans: int) -> bytes:
    """An ExportTraceServiceRequest like an exporter's: one resource, one scope, `spans` spans."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for k, v in {"service.name": "bench", "telemetry.sdk.language": "python"}.items():
        rs.resource.attributes.add(key=k, value=AnyValue(string_value=v))
    ss = rs.scope_spans.add()
    ss.scope.name = "bench"
    now = time.time_ns()
    for _ in range(spans):
        s = ss.spans.add(
            trace_id=os.urandom(16),
            span_id=os.urandom(8),
            name=SPAN_NAME,
            kind=1,
            start_time_unix_nano=now,
            end_time_unix_nano=now + 1000,
        )
        for k, v in ATTRS.items():
            value = s.attributes.add(key=k).value
            if isinstance(v, str):
                value.string_value = v
            elif isinstance(v, int):
                value.int_value = v
            else:
                value.double_value = v
    return req.SerializeToString()


async def _replay(port: int, request: bytes, connections: int, duration: float) -> int:
    stop_at = time.perf_counter() + duration
    done = 0

    async def one() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop_at:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            done += 1
        writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    return done


def measure_capacity(body: bytes, decode: str, connections: int, duration: float, validate_every: int = 0):
    """Replay `body` against a fresh receiver child; its requests/s and spans/s, and its CPU."""
    spans_per_request = count_spans(full_request_class(), body)
    request = (
        b"POST /v1/traces HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/x-protobuf\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    ) + body
    with Receiver(decode=decode, validate_every=validate_every) as rx:
        asyncio.run(_replay(rx.port, request, connections, 0.3))  # warm up connections and caches
        rx.reset()
        t0 = time.perf_counter()
        done = asyncio.run(_replay(rx.port, request, connections, duration))
        wall = time.perf_counter() - t0
        st = rx.stats()
    ok = st["spans"] == done * spans_per_request if decode != "none" else True
    return {
        "decode": decode,
        "connections": connections,
        "body_bytes": len(body),
        "spans_per_request": spans_per_request,
        "requests": done,
        "requests_per_s": round(done / wall, 1),
        "spans_per_s": round(done * spans_per_request / wall),
        "mb_per_s": round(done * len(body) / wall / 1e6, 1),
        "receiver_cpu_s": round(st["cpu_s"], 3),
        "receiver_cpu_pct_of_core": round(st["cpu_s"] / wall * 100, 1),
        "receiver_cpu_us_per_span": round(st["cpu_s"] / max(1, done * spans_per_request) * 1e6, 3),
        "counted_spans_match": ok,
        "decode_errors": st["decode_errors"],
        "wall_s": round(wall, 2),
    }


def capture_llmprobe_body(path: str, spans: int = 512) -> bool:
    """Let llmprobe (a child process) export one batch of `spans` spans to a capturing receiver."""
    code = (
        "import llmprobe\nllmprobe.init()\nfrom opentelemetry import trace\n"
        "t = trace.get_tracer('bench')\n"
        f"for _ in range({spans}):\n    t.start_span({SPAN_NAME!r}, attributes={ATTRS!r}).end()\n"
        "from llmprobe import _core\n_core.force_flush(10.0)\n"
    )
    with Receiver(decode="full", capture=path) as rx:
        env = clean_env(
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_METRICS_EXPORTER="none",
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=rx.endpoint,
            OTEL_BSP_MAX_EXPORT_BATCH_SIZE=str(spans),
            OTEL_SERVICE_NAME="bench",
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=60
        )
        if proc.returncode:
            print(proc.stderr[-2000:], file=sys.stderr)
        return proc.returncode == 0 and rx.stats()["spans"] >= spans and os.path.exists(path)


def cmd_capacity(a) -> None:
    if a.body:
        with open(a.body, "rb") as f:
            body, source = f.read(), a.body
    else:
        path = "/tmp/llmprobe-bench-body.bin"
        if capture_llmprobe_body(path, a.spans):
            with open(path, "rb") as f:
                body, source = f.read(), f"captured from llmprobe ({path})"
        else:
            body, source = synthetic_body(a.spans), "synthetic (opentelemetry-proto); llmprobe not importable"
    results = []
    for decode in a.decode.split(","):
        r = measure_capacity(body, decode, a.connections, a.duration, a.validate_every)
        results.append(r)
        print(
            f"[capacity decode={decode}] {r['spans_per_s']:,} spans/s ({r['requests_per_s']} req/s of "
            f"{r['spans_per_request']} spans, {r['mb_per_s']} MB/s), receiver CPU "
            f"{r['receiver_cpu_pct_of_core']}% of a core = {r['receiver_cpu_us_per_span']} us/span, "
            f"counts match: {r['counted_spans_match']}",
            file=sys.stderr,
        )
    out = {"body": source, "loadavg": loadavg(), "results": results}
    print(json.dumps(out, indent=1))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    s = sub.add_parser("serve", help="run the receiver")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--decode", choices=["full", "shallow", "none"], default="full")
    s.add_argument(
        "--validate-every", type=int, default=0, help="shallow: fully parse every K-th request too"
    )
    s.add_argument("--capture", help="write the first request body that has spans to this file")
    c = sub.add_parser("capacity", help="measure the receiver's own capacity")
    c.add_argument("--body", help="a captured request body (default: capture one from llmprobe)")
    c.add_argument("--spans", type=int, default=512, help="spans in the captured/synthetic body")
    c.add_argument("--decode", default="full,shallow", help="comma list of decode modes to measure")
    c.add_argument("--validate-every", type=int, default=0)
    c.add_argument("--connections", type=int, default=4, help="keep-alive connections replaying at once")
    c.add_argument("--duration", type=float, default=5.0)
    c.add_argument("--out", help="also write the JSON here")
    a = ap.parse_args()
    if a.cmd == "capacity":
        cmd_capacity(a)
    elif a.cmd == "serve":
        cmd_serve(a)
    else:
        ap.print_help()


if __name__ == "__main__":
    main()
