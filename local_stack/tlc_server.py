"""A small HTTP server with the TLC sources' URL layouts, serving the real sample files in the repo.

One root serves both sources: the course's CSV mirror, ``{base}/{taxi}/{taxi}_tripdata_{YYYY-MM}.csv.gz``,
and the TLC's Parquet, ``{base}/trip-data/{taxi}_tripdata_{YYYY-MM}.parquet``, plus the zone lookup
at ``{base}/misc/taxi_zone_lookup.csv``. Like the real servers it sends ``Content-Length``,
``Last-Modified`` and an ``ETag``, answers ``HEAD``, answers 304 to a conditional request for an
unchanged file, and 404 for a month that is not there. Pointing the Variables ``mirror_base_url``
and ``tlc_base_url`` at it is the only difference between a local run and a real one.

Run it with ``python -m local_stack.tlc_server --root data/tlc --port 8765`` (``--host 0.0.0.0`` in a
container); ``--bytes-per-second`` makes it a slow mirror (each download sent at that rate), for
trying out timeouts and deadlines.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import threading
import time
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "tlc"


class TlcHandler(SimpleHTTPRequestHandler):
    """Static files with an ETag (size and modification time), If-None-Match, and an optional throttle."""

    def __init__(self, *args, bytes_per_second: float | None = None, **kwargs) -> None:
        self.bytes_per_second = bytes_per_second  # set first: the base class serves the request
        super().__init__(*args, **kwargs)

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if path.is_file():
            status = os.stat(path)
            etag = f'"{status.st_size:x}-{status.st_mtime_ns:x}"'
            if etag in self.headers.get("If-None-Match", ""):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.send_header("ETag", etag)
                self.end_headers()
                return None
            self._etag = etag
        return super().send_head()

    def end_headers(self) -> None:
        etag = getattr(self, "_etag", None)
        if etag:
            self.send_header("ETag", etag)
            self._etag = None
        super().end_headers()

    def copyfile(self, source, outputfile) -> None:
        if not self.bytes_per_second:
            shutil.copyfileobj(source, outputfile)
            return
        # Ten blocks a second, each followed by the pause that keeps the average at the rate.
        block_size = max(1, int(self.bytes_per_second / 10))
        while block := source.read(block_size):
            outputfile.write(block)
            time.sleep(len(block) / self.bytes_per_second)

    def list_directory(self, path):  # a file server, not a file browser
        self.send_error(HTTPStatus.NOT_FOUND)
        return None

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass


def make_server(
    root: Path, port: int = 0, host: str = "127.0.0.1", bytes_per_second: float | None = None
) -> ThreadingHTTPServer:
    """A server for ``root`` on ``host:port`` (port 0 picks a free one), not yet serving.

    ``bytes_per_second`` throttles every response body to that rate; None sends at full speed.
    """
    handler = functools.partial(TlcHandler, directory=str(root), bytes_per_second=bytes_per_second)
    return ThreadingHTTPServer((host, port), handler)


def serve_in_thread(
    root: Path = SAMPLES, port: int = 0, bytes_per_second: float | None = None
) -> tuple[ThreadingHTTPServer, str]:
    """Start serving in a daemon thread; return the server and its base URL."""
    server = make_server(root, port, bytes_per_second=bytes_per_second)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=SAMPLES, help="folder with the sources' layouts")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 in a container (docker compose)")
    parser.add_argument("--bytes-per-second", type=float, help="send each file at this rate (a slow mirror)")
    args = parser.parse_args()
    make_server(args.root, args.port, args.host, args.bytes_per_second).serve_forever()


if __name__ == "__main__":
    main()
