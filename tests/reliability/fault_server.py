"""A real HTTP server standing in for the TLC sources that misbehaves on cue.

It serves ``data/tlc`` with both sources' layouts (the course's CSV mirror and the TLC's Parquet),
answering ``GET`` and ``HEAD`` like ``local_stack``'s server. Each (method, path) has a script of
faults answered one per request, in order; once a script is used up, the server answers with the
real file, or with the file ``replace`` put in its place. Every request is counted per method and
path, so a test can assert that nothing was downloaded at all, or how often it was retried.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass(frozen=True)
class Fault:
    """One misbehaving answer: a status code, a body of our choosing, a stall, or a connection cut."""

    status: int = 200
    body: bytes | None = None  # None: the real file (or its replacement)
    content_type: str = "application/octet-stream"
    cut_after_bytes: int | None = None  # announce the whole length, send this much, then hang up
    stall_seconds: float = 0.0  # send the headers, then nothing for this long


def error(status: int) -> Fault:
    return Fault(status=status, body=f"HTTP {status}\n".encode(), content_type="text/plain")


def served(body: bytes, content_type: str = "application/octet-stream") -> Fault:
    return Fault(body=body, content_type=content_type)


def dropped_after(byte_count: int) -> Fault:
    return Fault(cut_after_bytes=byte_count)


def stalled(seconds: float) -> Fault:
    return Fault(stall_seconds=seconds)


class FaultyMirror:
    """The server's state: the folder it serves, replaced files, scripted faults, requests seen."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.scripts: dict[tuple[str, str], list[Fault]] = defaultdict(list)
        self.replaced: dict[str, bytes] = {}
        self.requests: Counter[tuple[str, str]] = Counter()
        self.url = ""
        self._lock = threading.Lock()

    def script(self, path: str, *faults: Fault, method: str = "GET") -> None:
        """Answer the next ``method`` requests for ``path``, e.g. ``/green/green_tripdata_2020-10.csv.gz``."""
        with self._lock:
            self.scripts[method, path].extend(faults)

    def replace(self, path: str, body: bytes) -> None:
        """Serve ``body`` as the file at ``path`` from now on, to every request (a changed or new file)."""
        self.replaced[path] = body

    def restore(self, path: str) -> None:
        self.replaced.pop(path, None)

    def count(self, path: str, method: str = "GET") -> int:
        return self.requests[method, path]

    def total_requests(self) -> int:
        return sum(self.requests.values())

    def answer(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.requests[method, path] += 1
            script = self.scripts[method, path]
            return script.pop(0) if script else None

    def content(self, path: str) -> bytes | None:
        if path in self.replaced:
            return self.replaced[path]
        file = self.folder / path.lstrip("/")
        return file.read_bytes() if file.is_file() and file.resolve().is_relative_to(self.folder) else None


def _handler(mirror: FaultyMirror) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer_unless_gone(send_body=True)

        def do_HEAD(self) -> None:
            self._answer_unless_gone(send_body=False)

        def _answer_unless_gone(self, send_body: bool) -> None:
            try:
                self._answer(send_body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (a read timeout): as a real server

        def _answer(self, send_body: bool) -> None:
            fault = mirror.answer(self.command, self.path) or Fault()
            body = fault.body if fault.body is not None else mirror.content(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(fault.status)
            self.send_header("Content-Type", fault.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not send_body:
                return
            if fault.stall_seconds:
                self.wfile.flush()
                time.sleep(fault.stall_seconds)
            if fault.cut_after_bytes is None:
                self.wfile.write(body)
            else:
                self.wfile.write(body[: fault.cut_after_bytes])
                self.wfile.flush()
                self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def faulty_mirror(folder: Path) -> Iterator[FaultyMirror]:
    """Serve ``folder`` on a free loopback port for the duration of the block."""
    mirror = FaultyMirror(folder.resolve())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(mirror))
    server.daemon_threads = True
    mirror.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield mirror
    finally:
        server.shutdown()
        server.server_close()
