"""GCS as a destination: Parquet objects published through ``GCSHook`` so that reruns replace, never add.

Object names are derived from the data (colour, month, day), never from the run, so rerunning a
month writes the same names again. New objects are uploaded first and the month's objects that the
new run did not write are deleted after: readers never see the month missing, and a partition
never keeps a stale file next to the new one.

A month of a family (``GCS``, the destination of ``taxi_api_to_gcs``) goes to the bucket twice,
with the family's declared columns plus ``source_month``:

- ``{taxi}_tripdata/{taxi}_tripdata_{YYYY-MM}.parquet``: one file for the month;
- ``{taxi}_tripdata_by_day/pickup_date=YYYY-MM-DD/{taxi}_tripdata_{YYYY-MM}.parquet``: the same
  rows partitioned by pickup day, Hive style. A day holds one file per source month, so a stray
  pickup from another month's file never makes one month's rerun overwrite another month's rows.

Beside them, ``{taxi}_tripdata_rejects/`` keeps a month's unreadable rows (CSV) and
``{taxi}_tripdata_profiles/`` its profile (JSON), which the anomaly test of later months reads.
Write-audit-publish: ``stage`` writes everything under a staging prefix of the run's own;
``publish`` copies the staged objects to their names (server-side), deletes the month's objects
the new load did not write, and writes the profile last. A refused month leaves the published
objects as they were.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from include.destinations.base import Datasets, Destination, Staged
from include.source.months import Month

if TYPE_CHECKING:
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    from include.checks.profile import MonthProfile
    from include.observing.lineage import Dataset
    from include.source.month_file import MonthFile

log = logging.getLogger(__name__)

PARQUET_MIME_TYPE = "application/vnd.apache.parquet"
# An upload past 8 MiB goes in chunks, each held in memory: the client's default chunk is 100 MiB;
# 8 MiB is the smallest Google advises for speed.
UPLOAD_CHUNK_BYTES = 8 << 20
MIME_TYPES = {
    ".parquet": PARQUET_MIME_TYPE,
    ".csv": "text/csv",
    ".json": "application/json",
    ".png": "image/png",
}


def upload(hook: GCSHook, bucket: str, uploads: dict[str, Path]) -> list[str]:
    """Upload each local file to its object name, typed by its suffix (``MIME_TYPES``), one after
    another, in chunks of ``UPLOAD_CHUNK_BYTES``; return the ``gs://`` URIs written.

    One at a time: the Google client's transfer manager (threads) hung a test's run on a loaded CI
    machine once, against the stand-in that serves one request at a time (bench/README.md).
    """
    for object_name, path in uploads.items():
        kind = MIME_TYPES.get(path.suffix, "application/octet-stream")
        hook.upload(
            bucket_name=bucket,
            object_name=object_name,
            filename=str(path),
            mime_type=kind,
            chunk_size=UPLOAD_CHUNK_BYTES,
        )
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


# --- The monthly flows' destination ---------------------------------------------------------------

PARTITION_COLUMN = "pickup_date"


def file_stem(taxi: str, month: Month | str) -> str:
    return f"{taxi}_tripdata_{month}"


def month_object(taxi: str, month: Month | str) -> str:
    return f"{taxi}_tripdata/{file_stem(taxi, month)}.parquet"


def by_day_prefix(taxi: str) -> str:
    return f"{taxi}_tripdata_by_day"


def rejects_object(taxi: str, month: Month | str) -> str:
    return f"{taxi}_tripdata_rejects/{file_stem(taxi, month)}.csv"


def profiles_prefix(taxi: str) -> str:
    return f"{taxi}_tripdata_profiles"


def profile_object(taxi: str, month: Month | str) -> str:
    return f"{profiles_prefix(taxi)}/{file_stem(taxi, month)}.json"


def staging_prefix(taxi: str, month: Month | str, run_id: str) -> str:
    """Where a run stages a month: unique per run, so concurrent runs never share a staging area."""
    run_key = hashlib.sha1(run_id.encode()).hexdigest()[:10]
    return f"_staging/taxi_api_to_gcs/{file_stem(taxi, month)}_{run_key}"


GCP_CONN_ID = "google_cloud_default"


@dataclass(frozen=True)
class StagedExport(Staged):
    """Where a run staged a month: its bucket, its staging prefix and the objects staged there."""

    bucket: str
    staging_prefix: str
    # The final names of the staged objects (each staged as ``{staging_prefix}/{name}``).
    objects: list[str]
    partitions: int

    def staged(self, name: str) -> str:
        return f"{self.staging_prefix}/{name}"

    def counted_rows(self) -> dict[str, int | None]:
        """Each object's rows where staging counted them (the month's file and its rejects), else None."""
        counted = {
            month_object(self.taxi, self.month): self.rows_loaded,
            rejects_object(self.taxi, self.month): self.rows_rejected,
        }
        return {name: counted.get(name) for name in self.objects}


class GCS(Destination):
    """The month as Parquet in a bucket, staged under a prefix of the run's own (see above)."""

    staged_type = StagedExport

    def __init__(self, hook: GCSHook, bucket: str) -> None:
        self.hook, self.bucket = hook, bucket

    @classmethod
    def from_airflow(cls) -> GCS:
        """The connection ``google_cloud_default`` and the Variable ``gcs_bucket``."""
        from airflow.providers.google.cloud.hooks.gcs import GCSHook
        from airflow.sdk import Variable

        return cls(GCSHook(GCP_CONN_ID), Variable.get("gcs_bucket"))

    def stage(self, month_file: MonthFile, run_id: str) -> StagedExport:
        """Write the cleaned month, its daily partitions, rejects and profile under the staging prefix.

        Everything is written locally first, so a file that fails while being read uploads nothing.
        """
        from include.destinations.parquet import DailyPartitionWriter, write_parquet

        request = month_file.request
        taxi, month = request.taxi, request.month
        name = f"{file_stem(taxi, month)}.parquet"
        uploads: dict[str, Path] = {}
        table_schema = request.schema.table_schema
        with tempfile.TemporaryDirectory(prefix="parquet-") as folder:
            local = Path(folder) / name
            # One pass: each batch goes into its days' files on its way into the month's file.
            with DailyPartitionWriter(
                Path(folder) / "days", table_schema, PARTITION_COLUMN, request.schema.pickup_column
            ) as days:
                rows = write_parquet(days.observe(month_file.batches()), table_schema, local)
                partitions = days.close()
            uploads[month_object(taxi, month)] = local
            uploads |= {
                p.object_name(by_day_prefix(taxi), PARTITION_COLUMN, name): p.path for p in partitions
            }
            if month_file.rejects.rows:
                uploads[rejects_object(taxi, month)] = Path(folder) / "rejects.csv"
                month_file.rejects.write_csv(uploads[rejects_object(taxi, month)])
            profile_path = Path(folder) / "profile.json"
            profile_path.write_text(json.dumps({**asdict(month_file.profile()), "run_id": run_id}, indent=1))
            uploads[profile_object(taxi, month)] = profile_path
            prefix = staging_prefix(taxi, month, run_id)
            upload(self.hook, self.bucket, {f"{prefix}/{name}": path for name, path in uploads.items()})
        log.info(
            "Staged %d rows of %s %s and %d daily partitions in gs://%s/%s/",
            rows,
            taxi,
            month,
            len(partitions),
            self.bucket,
            prefix,
        )
        return StagedExport(
            taxi=taxi,
            month=str(month),
            run_id=run_id,
            rows_loaded=rows,
            rows_rejected=len(month_file.rejects.rows),
            bucket=self.bucket,
            staging_prefix=prefix,
            objects=sorted(uploads),
            partitions=len(partitions),
        )

    def _read_profile(self, object_name: str) -> dict:
        return json.loads(self.hook.download(bucket_name=self.bucket, object_name=object_name))

    def _write_profile(self, object_name: str, values: dict) -> None:
        self.hook.upload(
            self.bucket, object_name, data=json.dumps(values, indent=1), mime_type=MIME_TYPES[".json"]
        )

    def staged_profile(self, staged: StagedExport) -> MonthProfile:
        return _month_profile(self._read_profile(staged.staged(profile_object(staged.taxi, staged.month))))

    def published_history(self, taxi: str, before: Month, months: int) -> list[MonthProfile]:
        first = before.minus(months)
        wanted = {profile_object(taxi, first.plus(i)) for i in range(months)}
        found = [
            name for name in self.hook.list(self.bucket, prefix=f"{profiles_prefix(taxi)}/") if name in wanted
        ]
        return [_month_profile(self._read_profile(name)) for name in sorted(found)]

    def record_anomalies(self, staged: StagedExport, anomalies: list[dict]) -> None:
        name = staged.staged(profile_object(staged.taxi, staged.month))
        self._write_profile(name, {**self._read_profile(name), "anomalies": anomalies})

    def record_review(self, staged: StagedExport, review: dict) -> None:
        """In the staged profile, which ``publish`` copies: a published month keeps its review, a
        rejected one's goes with its staging (the run's failure and its alert say who and why)."""
        name = staged.staged(profile_object(staged.taxi, staged.month))
        self._write_profile(name, {**self._read_profile(name), "review": review})

    def publish(self, staged: StagedExport) -> dict:
        """Copy the staged objects to their names, delete the month's objects it no longer has, and
        write the profile last; return what was published (the asset event's extra)."""
        taxi, month, bucket = staged.taxi, staged.month, staged.bucket
        profile = profile_object(taxi, month)
        for name in staged.objects:
            if name != profile:
                self.hook.copy(bucket, staged.staged(name), bucket, name)
        name = f"{file_stem(taxi, month)}.parquet"
        stale = [
            day
            for day in owned_objects(self.hook, bucket, by_day_prefix(taxi), name)
            if day not in staged.objects
        ]
        if rejects_object(taxi, month) not in staged.objects and self.hook.exists(
            bucket, rejects_object(taxi, month)
        ):
            stale.append(rejects_object(taxi, month))
        delete(self.hook, bucket, stale)
        values = self._read_profile(staged.staged(profile))
        self._write_profile(profile, {**values, "published_at": datetime.now(timezone.utc).isoformat()})
        uri = f"gs://{bucket}/{month_object(taxi, month)}"
        log.info("Published %s and %d daily partitions", uri, staged.partitions)
        # ``uri``: what taxi_gcs_to_bigquery loads, read from the asset event's extra.
        return {"taxi": taxi, "month": month, "rows": staged.rows_loaded, "location": uri, "uri": uri}

    def drop_staging(self, taxi: str, month: Month | str, run_id: str) -> None:
        delete_prefix(self.hook, self.bucket, staging_prefix(taxi, month, run_id))

    def staged_datasets(self, staged: StagedExport) -> list[Dataset]:
        from include.observing.lineage import gcs_object

        return [
            gcs_object(staged.bucket, staged.staged(name), rows)
            for name, rows in staged.counted_rows().items()
        ]

    def published_datasets(self, staged: StagedExport) -> Datasets:
        from include.observing.lineage import gcs_object

        counted = staged.counted_rows()
        return Datasets(
            tuple(gcs_object(staged.bucket, staged.staged(name), counted[name]) for name in staged.objects),
            tuple(gcs_object(staged.bucket, name, counted[name]) for name in staged.objects),
        )


def _month_profile(values: dict) -> MonthProfile:
    """A profile read back from its JSON, without what the checks and the publish added to it."""
    from include.checks.profile import MonthProfile

    fields = MonthProfile.__dataclass_fields__
    return MonthProfile(**{name: value for name, value in values.items() if name in fields})
