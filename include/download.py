"""Download one month of TLC trips over HTTP, streamed to disk.

A month of yellow trips is hundreds of megabytes: it is streamed to a file in chunks, never held in
memory. Transient failures (timeouts, dropped connections, 5xx) are retried here with exponential
backoff, because a retry of the whole Airflow task would repeat work that already succeeded; a 404
is final, since the month is simply not published, and is raised as its own error naming the URL.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import requests

from include.errors import DownloadError, SourceNotPublishedError, TransientDownloadError
from include.progress import Progress

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20


def download(
    url: str,
    destination: Path,
    *,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    retries: int = 4,
    backoff_seconds: float = 2.0,
) -> int:
    """Stream ``url`` into ``destination`` and return the number of bytes written.

    The read timeout applies between chunks, not to the whole transfer, so a slow but steady
    download of a large month is not cut off while a stalled one is. Each retry starts the file
    again from its first byte, so a partial file is never kept.
    """
    for attempt in range(retries + 1):
        try:
            return _download_once(url, destination, (connect_timeout, read_timeout))
        except TransientDownloadError as error:
            if attempt == retries:
                raise
            wait = backoff_seconds * 2**attempt
            log.warning("%s; retry %d of %d in %.1f s", error, attempt + 1, retries, wait)
            time.sleep(wait)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _download_once(url: str, destination: Path, timeout: tuple[float, float]) -> int:
    try:
        response = requests.get(url, stream=True, timeout=timeout)
    except requests.RequestException as error:
        raise TransientDownloadError(f"could not reach {url}: {error}") from error
    with response:
        status = response.status_code
        if status == 404:
            raise SourceNotPublishedError(f"{url} is not published (HTTP 404)")
        if status == 429 or status >= 500:
            raise TransientDownloadError(f"{url} answered HTTP {status}")
        if status >= 400:
            raise DownloadError(f"{url} answered HTTP {status}")
        expected = int(response.headers.get("Content-Length") or 0)
        written = _stream_to_file(response, destination, url, expected)
    if expected and written != expected:
        raise TransientDownloadError(f"download of {url} ended after {written} of {expected} bytes")
    return written


def _stream_to_file(response: requests.Response, destination: Path, url: str, expected: int) -> int:
    progress = Progress(f"Downloading {url}", expected)
    written = 0
    try:
        with destination.open("wb") as sink:
            for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
                sink.write(chunk)
                written += len(chunk)
                progress.update(written)
    except requests.RequestException as error:
        raise TransientDownloadError(f"download of {url} failed after {written} bytes: {error}") from error
    progress.finish(written)
    return written
