"""Errors the flows raise on purpose. Kept free of imports so DAG files can name them cheaply."""


class DownloadError(Exception):
    """The file could not be downloaded; the message names the URL."""


class SourceNotPublishedError(DownloadError):
    """The server answered 404: the requested month does not exist at the source."""


class TransientDownloadError(DownloadError):
    """A failure worth retrying: timeout, dropped connection, truncated body, 429 or 5xx."""
