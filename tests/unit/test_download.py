import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from include.errors import SourceAccessDeniedError, SourceNotPublishedError, TransientDownloadError
from include.source.download import current_version, download
from include.source.months import Month
from include.source.sources import SOURCES
from tests.samples import GREEN_2024_01_PARQUET, YELLOW_2021_01

MIRROR, TLC = SOURCES["mirror"], SOURCES["tlc"]


def test_downloads_the_exact_bytes_from_either_layout(tlc_base_url, tmp_path):
    for url, sample in (
        (MIRROR.url(tlc_base_url, "yellow", Month(2021, 1)), YELLOW_2021_01),
        (TLC.url(tlc_base_url, "green", Month(2024, 1)), GREEN_2024_01_PARQUET),
    ):
        destination = tmp_path / sample.name
        version = download(url, destination)
        assert version.size == sample.stat().st_size
        assert destination.read_bytes() == sample.read_bytes()
        assert version.etag and version.last_modified


def test_an_unchanged_file_answers_304_to_a_conditional_request(tlc_base_url):
    url = MIRROR.url(tlc_base_url, "yellow", Month(2021, 1))
    version = current_version(url)
    assert version.size == YELLOW_2021_01.stat().st_size
    assert current_version(url, version) is None  # 304: still that version, nothing downloaded
    assert current_version(url, type(version)(etag='"another"')) == version


def test_a_month_that_is_not_published_fails_at_once_naming_the_url(tlc_base_url, tmp_path):
    url = MIRROR.url(tlc_base_url, "yellow", Month(2021, 2))
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
    version = download(flaky_server, tmp_path / "file.csv.gz", backoff_seconds=0.01)
    assert version.size == YELLOW_2021_01.stat().st_size
    assert _FlakyHandler.requests_seen == 3


def test_server_errors_give_up_after_the_retries(flaky_server, tmp_path):
    _FlakyHandler.statuses = [502] * 10
    with pytest.raises(TransientDownloadError, match="HTTP 502"):
        download(flaky_server, tmp_path / "file.csv.gz", retries=2, backoff_seconds=0.01)
    assert _FlakyHandler.requests_seen == 3


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_request_fails_at_once(flaky_server, tmp_path, status):
    _FlakyHandler.statuses = [status]
    with pytest.raises(SourceAccessDeniedError, match=f"refused access \\(HTTP {status}\\)"):
        download(flaky_server, tmp_path / "file.csv.gz", backoff_seconds=0.01)
    assert _FlakyHandler.requests_seen == 1
