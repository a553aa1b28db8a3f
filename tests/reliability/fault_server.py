"""A real HTTP server standing in for the TLC mirror that misbehaves on cue.

Each path has a script of faults answered one per request, in order; once a path's script is
used up, the server answers with the real file from its folder, exactly as ``local_stack``'s
mirror does. Every request is counted, so a test can assert that nothing was downloaded at all.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass(frozen=True)
class Fault:
    """One misbehaving answer: a status code, a body of our choosing, or a connection cut short."""

    status: int = 200
    body: bytes | None = None  # None: the real file
    content_type: str = "application/gzip"
    cut_after_bytes: int | None = None  # announce the whole length, send this much, then hang up


def error(status: int) -> Fault:
    return Fault(status=status, body=f"HTTP {status}\n".encode(), content_type="text/plain")


def served(body: bytes, content_type: str = "application/gzip") -> Fault:
    return Fault(body=body, content_type=content_type)


def dropped_after(byte_count: int) -> Fault:
    return Fault(cut_after_bytes=byte_count)


class FaultyMirror:
    """The server's state: the folder it mirrors, the scripted faults, and the requests seen."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.scripts: dict[str, list[Fault]] = defaultdict(list)
        self.requests: Counter[str] = Counter()
        self.url = ""

    def script(self, path: str, *faults: Fault) -> None:
        """Answer the next requests for ``path`` (e.g. ``/green/green_tripdata_2020-10.csv.gz``)."""
        self.scripts[path].extend(faults)

    def answer(self, path: str) -> Fault | None:
        self.requests[path] += 1
        return self.scripts[path].pop(0) if self.scripts[path] else None


def _handler(mirror: FaultyMirror) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fault = mirror.answer(self.path) or Fault()
            body = fault.body
            if body is None:
                file = mirror.folder / self.path.lstrip("/")
                if not file.is_file():
                    self.send_error(404)
                    return
                body = file.read_bytes()
            self.send_response(fault.status)
            self.send_header("Content-Type", fault.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
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
    mirror = FaultyMirror(folder)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(mirror))
    mirror.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield mirror
    finally:
        server.shutdown()
        server.server_close()
