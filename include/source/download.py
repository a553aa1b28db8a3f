"""Download one TLC file over HTTP, streamed to disk, and ask whether a file is there or has changed.

A month of yellow trips is hundreds of megabytes: it is streamed to a file in chunks, never held in
memory. Transient failures (timeouts, dropped connections, 429, 5xx) are retried here with
exponential backoff by ``tenacity``, because a retry of the whole Airflow task would repeat work
that already succeeded. A 404 is final, since the month is simply not published, and so are 401
and 403 (a permission, not luck); each is raised as its own error naming the URL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from include.errors import (
    DownloadError,
    SourceAccessDeniedError,
    SourceNotPublishedError,
    TransientDownloadError,
)
from include.observing.progress import Progress

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class FileVersion:
    """What a server says identifies a file's content: its ETag, Last-Modified and size."""

    etag: str | None = None
    last_modified: str | None = None
    size: int | None = None

    @classmethod
    def of(cls, response: requests.Response) -> FileVersion:
        size = response.headers.get("Content-Length")
        return cls(
            response.headers.get("ETag"), response.headers.get("Last-Modified"), int(size) if size else None
        )

    def conditional_headers(self) -> dict[str, str]:
        """Headers that make the server answer 304 Not Modified if the file is still this version."""
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


def raise_for_status(url: str, status: int) -> None:
    """The download error an HTTP status means, if any (the retry policy decides by its class)."""
    if status == 404:
        raise SourceNotPublishedError(f"{url} is not published (HTTP 404)")
    if status in (401, 403):
        raise SourceAccessDeniedError(f"{url} refused access (HTTP {status}): check the source's URL")
    if status == 429 or status >= 500:
        raise TransientDownloadError(f"{url} answered HTTP {status}")
    if status >= 400:
        raise DownloadError(f"{url} answered HTTP {status}")


def _retrying(retries: int, backoff_seconds: float) -> Retrying:
    """Retry transient errors ``retries`` times, waiting ``backoff_seconds`` doubled each time."""

    def log_wait(state) -> None:
        log.warning(
            "%s; retry %d of %d in %.1f s",
            state.outcome.exception(),
            state.attempt_number,
            retries,
            state.next_action.sleep,
        )

    return Retrying(
        stop=stop_after_attempt(retries + 1),
        wait=wait_exponential(multiplier=backoff_seconds, min=backoff_seconds),
        retry=retry_if_exception_type(TransientDownloadError),
        before_sleep=log_wait,
        reraise=True,
    )


def download(
    url: str,
    destination: Path,
    *,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    retries: int = 4,
    backoff_seconds: float = 2.0,
) -> FileVersion:
    """Stream ``url`` into ``destination``; return the version of what was downloaded (its bytes as size).

    The read timeout applies between chunks, not to the whole transfer, so a slow but steady
    download of a large month is not cut off while a stalled one is. Each retry starts the file
    again from its first byte, so a partial file is never kept.
    """
    for attempt in _retrying(retries, backoff_seconds):
        with attempt:
            return _download_once(url, destination, (connect_timeout, read_timeout))
    raise AssertionError("unreachable: tenacity returns or re-raises")


def _download_once(url: str, destination: Path, timeout: tuple[float, float]) -> FileVersion:
    try:
        response = requests.get(url, stream=True, timeout=timeout)
    except requests.RequestException as error:
        raise TransientDownloadError(f"could not reach {url}: {error}") from error
    with response:
        raise_for_status(url, response.status_code)
        version = FileVersion.of(response)
        written = _stream_to_file(response, destination, url, version.size or 0)
    if version.size and written != version.size:
        raise TransientDownloadError(f"download of {url} ended after {written} of {version.size} bytes")
    return FileVersion(version.etag, version.last_modified, written)


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


def current_version(
    url: str,
    known: FileVersion | None = None,
    *,
    timeout: float = 10.0,
    retries: int = 4,
    backoff_seconds: float = 2.0,
) -> FileVersion | None:
    """Ask the server (HEAD) for the file's version without downloading it.

    With ``known``, the request is conditional: ``None`` means the server answered 304, the file
    is still that version. A missing file raises ``SourceNotPublishedError``.
    """
    headers = known.conditional_headers() if known else {}
    for attempt in _retrying(retries, backoff_seconds):
        with attempt:
            try:
                response = requests.head(url, headers=headers, timeout=timeout, allow_redirects=True)
            except requests.RequestException as error:
                raise TransientDownloadError(f"could not reach {url}: {error}") from error
            if response.status_code == 304:
                return None
            raise_for_status(url, response.status_code)
            return FileVersion.of(response)
    raise AssertionError("unreachable: tenacity returns or re-raises")
