import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from include.download import download
from include.errors import DownloadError, SourceNotPublishedError, TransientDownloadError
from include.months import Month
from include.sources import tlc_url
from tests.samples import YELLOW_2021_01


def test_url_follows_the_mirror_layout():
    url = tlc_url("https://example.test/releases/download/", "green", Month(2020, 10))
    assert url == "https://example.test/releases/download/green/green_tripdata_2020-10.csv.gz"


def test_downloads_the_exact_bytes(tlc_base_url, tmp_path):
    destination = tmp_path / "file.csv.gz"
    written = download(tlc_url(tlc_base_url, "yellow", Month(2021, 1)), destination)
    assert written == YELLOW_2021_01.stat().st_size
    assert destination.read_bytes() == YELLOW_2021_01.read_bytes()


def test_a_month_that_is_not_published_fails_at_once_naming_the_url(tlc_base_url, tmp_path):
    url = tlc_url(tlc_base_url, "yellow", Month(2021, 2))
    with pytest.raises(SourceNotPublishedError, match=f"{url} is not published \\(HTTP 404\\)"):
        download(url, tmp_path / "file.csv.gz", retries=3, backoff_seconds=5)


class _FlakyHandler(BaseHTTPRequestHandler):
    """Answers with the queued status codes first, then with the real file."""

    statuses: ClassVar[list[int]] = []
    requests_seen = 0

    def do_GET(self):
        type(self).requests_seen += 1
        if self.statuses:
            self.send_error(self.statuses.pop(0))
            return
        body = YELLOW_2021_01.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_server():
    _FlakyHandler.requests_seen = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/yellow/file.csv.gz"
    server.shutdown()


def test_server_errors_are_retried_until_the_file_comes(flaky_server, tmp_path):
    _FlakyHandler.statuses = [503, 500]
    written = download(flaky_server, tmp_path / "file.csv.gz", backoff_seconds=0.01)
    assert written == YELLOW_2021_01.stat().st_size
    assert _FlakyHandler.requests_seen == 3


def test_server_errors_give_up_after_the_retries(flaky_server, tmp_path):
    _FlakyHandler.statuses = [502] * 10
    with pytest.raises(TransientDownloadError, match="HTTP 502"):
        download(flaky_server, tmp_path / "file.csv.gz", retries=2, backoff_seconds=0.01)
    assert _FlakyHandler.requests_seen == 3


def test_client_errors_other_than_404_are_not_retried(flaky_server, tmp_path):
    _FlakyHandler.statuses = [403]
    with pytest.raises(DownloadError, match="HTTP 403"):
        download(flaky_server, tmp_path / "file.csv.gz", backoff_seconds=0.01)
    assert _FlakyHandler.requests_seen == 1
