"""Publish local files to a GCS bucket through ``GCSHook`` so that reruns replace, never add.

Object names are derived from the data (colour, month, day), never from the run, so rerunning a
month writes the same names again. New objects are uploaded first and the month's objects that the
new run did not write are deleted after: readers never see the month missing, and a partition
never keeps a stale file next to the new one.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

log = logging.getLogger(__name__)

PARQUET_MIME_TYPE = "application/vnd.apache.parquet"
MIME_TYPES = {
    ".parquet": PARQUET_MIME_TYPE,
    ".csv": "text/csv",
    ".json": "application/json",
    ".png": "image/png",
}


def upload(hook: GCSHook, bucket: str, uploads: dict[str, Path]) -> list[str]:
    """Upload each local file to its object name, typed by its suffix (``MIME_TYPES``); return the
    ``gs://`` URIs written."""
    for object_name, path in uploads.items():
        kind = MIME_TYPES.get(path.suffix, "application/octet-stream")
        hook.upload(bucket_name=bucket, object_name=object_name, filename=str(path), mime_type=kind)
    log.info("Uploaded %d object(s) to gs://%s", len(uploads), bucket)
    return [f"gs://{bucket}/{name}" for name in uploads]


def replace_objects(
    hook: GCSHook,
    bucket: str,
    prefix: str,
    file_name: str,
    uploads: dict[str, Path],
) -> list[str]:
    """Upload ``uploads``, then delete the other objects under ``prefix`` named ``file_name``.

    ``file_name`` identifies what one source owns inside a shared dataset (e.g. every day's
    ``yellow_tripdata_2021-01.parquet``), so replacing one month never touches another's files.
    """
    written = upload(hook, bucket, uploads)
    stale = [name for name in owned_objects(hook, bucket, prefix, file_name) if name not in uploads]
    delete(hook, bucket, stale)
    return written


def owned_objects(hook: GCSHook, bucket: str, prefix: str, file_name: str) -> list[str]:
    """The objects under ``prefix`` whose last path segment is ``file_name``."""
    return [name for name in hook.list(bucket, prefix=f"{prefix}/") if name.rsplit("/", 1)[-1] == file_name]


def delete(hook: GCSHook, bucket: str, object_names: Iterable[str]) -> None:
    names = list(object_names)
    for name in names:
        hook.delete(bucket_name=bucket, object_name=name)
    if names:
        log.info("Deleted %d object(s) from gs://%s", len(names), bucket)


def download(hook: GCSHook, bucket: str, object_names: Iterable[str], folder: Path) -> list[Path]:
    """Download objects into ``folder`` under their base names; return the local paths in order."""
    paths = []
    for name in object_names:
        path = folder / name.rsplit("/", 1)[-1]
        hook.download(bucket_name=bucket, object_name=name, filename=str(path))
        paths.append(path)
    return paths


@contextmanager
def downloaded(hook: GCSHook, bucket: str, object_names: Iterable[str]) -> Iterator[list[Path]]:
    """The objects downloaded into a temporary folder, removed when the block ends."""
    with tempfile.TemporaryDirectory(prefix="gcs-") as folder:
        yield download(hook, bucket, object_names, Path(folder))


def delete_prefix(hook: GCSHook, bucket: str, prefix: str) -> None:
    """Delete every object under ``prefix/``: staging data that has served its purpose."""
    delete(hook, bucket, hook.list(bucket, prefix=f"{prefix.rstrip('/')}/"))
