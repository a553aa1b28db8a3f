"""A small HTTP server with the TLC mirror's URL layout, serving the real sample files in the repo.

``GET {base}/{taxi}/{taxi}_tripdata_{YYYY-MM}.csv.gz`` answers like the GitHub release mirror: the
file with a ``Content-Length``, or 404 for a month that is not there. Pointing the Variable
``tlc_base_url`` at it is the only difference between a local run and a real one.

Run it with ``python -m local_stack.tlc_server --root data/tlc --port 8765``.
"""

from __future__ import annotations

import argparse
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "tlc"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass


def make_server(root: Path, port: int = 0, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A server for ``root`` on ``host:port`` (port 0 picks a free one), not yet serving."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    return ThreadingHTTPServer((host, port), handler)


def serve_in_thread(root: Path = SAMPLES, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start serving in a daemon thread; return the server and its base URL."""
    server = make_server(root, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=SAMPLES, help="folder with {taxi}/ subfolders")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    make_server(args.root, args.port).serve_forever()


if __name__ == "__main__":
    main()
