"""The errors the flows raise on purpose, one class per way of failing.

The retry policy (``include.flows.defaults.RETRY_POLICY``) decides by these classes, so a task
retries what may pass (a timeout, a restarted server) and fails at once on what another try
cannot change (a month that does not exist, a file that cannot be read, a check that refuses
the data). Kept free of imports so DAG files can name them cheaply.
"""


class DownloadError(Exception):
    """The file could not be downloaded; the message names the URL."""


class SourceNotPublishedError(DownloadError):
    """The source has no such file (HTTP 404), or it did not appear within the wait."""


class SourceAccessDeniedError(DownloadError):
    """The source refused the request (HTTP 401 or 403): credentials or permissions, not luck."""


class TransientDownloadError(DownloadError):
    """A failure worth retrying: timeout, dropped connection, truncated body, 429 or 5xx."""


class InvalidParamsError(ValueError):
    """A run's params or a Variable are invalid; the message names the value and what is allowed."""


class InvalidFileError(ValueError):
    """The downloaded file cannot be read as the declared schema; the message names the file."""


class DataQualityError(ValueError):
    """A check refused the data before it was published; the message names what failed."""


class MonthNotLoadedError(DataQualityError):
    """A step needs a month that was never loaded; the message names the flow to run first."""


class MonthRejectedError(DataQualityError):
    """A person reviewing a flagged month rejected it, or nobody answered and the default is reject;
    the message names who and why."""


class DeploymentError(RuntimeError):
    """This Airflow lacks a piece the DAGs need (the plugins, the pools); the message says what to do."""
