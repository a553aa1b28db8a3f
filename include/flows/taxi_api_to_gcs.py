"""The steps of ``taxi_api_to_gcs``: stage a month of one taxi family as Parquet in GCS, judge it,
publish it.

The month goes to the bucket twice, with the family's declared columns plus ``source_month``:

- ``{taxi}_tripdata/{taxi}_tripdata_{YYYY-MM}.parquet``: one file for the month;
- ``{taxi}_tripdata_by_day/pickup_date=YYYY-MM-DD/{taxi}_tripdata_{YYYY-MM}.parquet``: the same
  rows partitioned by pickup day, Hive style. A day holds one file per source month, so a stray
  pickup from another month's file never makes one month's rerun overwrite another month's rows.

Beside them, ``{taxi}_tripdata_rejects/`` keeps a month's unreadable rows (CSV) and
``{taxi}_tripdata_profiles/`` its profile (JSON), which the anomaly test of later months reads.

Write-audit-publish: ``stage`` writes everything under a staging prefix of this run's own;
``audit`` and ``check_anomalies`` judge the staged profile; ``publish`` copies the staged objects
to their names (server-side), deletes the month's objects the new load did not write, and writes
the profile last. A refused month leaves the published objects as they were.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from include.checks.profile import MonthProfile
from include.checks.quality import (
    HISTORY_MONTHS,
    MONTH_CHECKS,
    Action,
    Anomaly,
    failed_checks,
    find_anomalies,
    judge,
)
from include.destinations import gcs
from include.destinations.parquet import DailyPartitionWriter, write_parquet
from include.errors import DataQualityError
from include.observing import lineage
from include.source.month_file import MonthFile
from include.source.months import Month
from include.source.sources import MonthRequest
from include.source.transform import with_source_month

if TYPE_CHECKING:
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class StagedExport:
    """What a run staged for a month: small and flat, so it travels between tasks as an XCom."""

    taxi: str
    month: str
    run_id: str
    bucket: str
    staging_prefix: str
    # The final names of the staged objects (each staged as ``{staging_prefix}/{name}``).
    objects: list[str]
    rows_loaded: int
    partitions: int
    rows_rejected: int

    def staged(self, name: str) -> str:
        return f"{self.staging_prefix}/{name}"


def stage(hook: GCSHook, path: Path, request: MonthRequest, bucket: str, run_id: str) -> StagedExport:
    """Write the cleaned month, its daily partitions, rejects and profile under the staging prefix.

    Everything is written locally first, so a file that fails while being read uploads nothing.
    """
    taxi, month = request.taxi, request.month
    month_file = MonthFile(path, request)
    name = f"{file_stem(taxi, month)}.parquet"
    uploads: dict[str, Path] = {}
    table_schema = request.schema.table_schema
    with tempfile.TemporaryDirectory(prefix="parquet-") as folder:
        local = Path(folder) / name
        # One pass: each batch goes into its days' files on its way into the month's file.
        with DailyPartitionWriter(
            Path(folder) / "days", table_schema, PARTITION_COLUMN, request.schema.pickup_column
        ) as days:
            rows = write_parquet(
                days.observe(with_source_month(month_file.batches(), month)), table_schema, local
            )
            partitions = days.close()
        uploads[month_object(taxi, month)] = local
        uploads |= {p.object_name(by_day_prefix(taxi), PARTITION_COLUMN, name): p.path for p in partitions}
        if month_file.rejects.rows:
            uploads[rejects_object(taxi, month)] = Path(folder) / "rejects.csv"
            month_file.rejects.write_csv(uploads[rejects_object(taxi, month)])
        profile_path = Path(folder) / "profile.json"
        profile_path.write_text(json.dumps({**asdict(month_file.profile()), "run_id": run_id}, indent=1))
        uploads[profile_object(taxi, month)] = profile_path
        prefix = staging_prefix(taxi, month, run_id)
        gcs.upload(hook, bucket, {f"{prefix}/{name}": local_path for name, local_path in uploads.items()})
    log.info(
        "Staged %d rows of %s %s and %d daily partitions in gs://%s/%s/",
        rows,
        taxi,
        month,
        len(partitions),
        bucket,
        prefix,
    )
    staged = StagedExport(
        taxi,
        str(month),
        run_id,
        bucket,
        prefix,
        sorted(uploads),
        rows,
        len(partitions),
        len(month_file.rejects.rows),
    )
    lineage.staged_in_gcs(
        month_file, bucket, {staged.staged(name): rows for name, rows in counted_rows(staged).items()}
    )
    return staged


def counted_rows(staged: StagedExport) -> dict[str, int | None]:
    """Each object's rows where staging counted them (the month's file and its rejects), else None."""
    counted = {
        month_object(staged.taxi, staged.month): staged.rows_loaded,
        rejects_object(staged.taxi, staged.month): staged.rows_rejected,
    }
    return {name: counted.get(name) for name in staged.objects}


def _read_profile(hook: GCSHook, bucket: str, object_name: str) -> dict:
    return json.loads(hook.download(bucket_name=bucket, object_name=object_name))


def _month_profile(values: dict) -> MonthProfile:
    fields = MonthProfile.__dataclass_fields__
    return MonthProfile(**{name: value for name, value in values.items() if name in fields})


def audit(hook: GCSHook, staged: StagedExport) -> None:
    """Fail before publishing unless the staged profile passes ``include.checks.quality.MONTH_CHECKS``."""
    profile = _month_profile(
        _read_profile(hook, staged.bucket, staged.staged(profile_object(staged.taxi, staged.month)))
    )
    failed = failed_checks(profile)
    if failed:
        statements = ", ".join(f"{name} ({MONTH_CHECKS[name]['check_statement']})" for name in failed)
        raise DataQualityError(
            f"{staged.taxi} {staged.month} fails {statements}: rows_read={profile.rows_read}, "
            f"rows_loaded={profile.rows_loaded}, rows_outside_month={profile.rows_outside_month}; "
            "the month is not published"
        )
    log.info("%s %s passes %s", staged.taxi, staged.month, ", ".join(MONTH_CHECKS))


def published_history(hook: GCSHook, bucket: str, taxi: str, before: Month) -> list[MonthProfile]:
    """The published profiles of the ``HISTORY_MONTHS`` months before ``before``, oldest first."""
    first = before.minus(HISTORY_MONTHS)
    wanted = {profile_object(taxi, first.plus(i)) for i in range(HISTORY_MONTHS)}
    found = [name for name in hook.list(bucket, prefix=f"{profiles_prefix(taxi)}/") if name in wanted]
    return [_month_profile(_read_profile(hook, bucket, name)) for name in sorted(found)]


def check_anomalies(hook: GCSHook, staged: StagedExport, actions: Mapping[str, Action]) -> list[Anomaly]:
    """Compare the staged profile with the published months before it; store the flags in it."""
    staged_profile = staged.staged(profile_object(staged.taxi, staged.month))
    values = _read_profile(hook, staged.bucket, staged_profile)
    profile = _month_profile(values)
    history = published_history(hook, staged.bucket, staged.taxi, Month.parse(staged.month))
    anomalies = find_anomalies(profile, history, actions)
    values["anomalies"] = [anomaly.as_json() for anomaly in anomalies]
    hook.upload(
        staged.bucket, staged_profile, data=json.dumps(values, indent=1), mime_type="application/json"
    )
    judge(profile, history, anomalies)
    return anomalies


def publish(hook: GCSHook, staged: StagedExport) -> dict:
    """Copy the staged objects to their names, delete the month's objects it no longer has, and write
    the profile last; return what was published (the asset event's extra)."""
    taxi, month, bucket = staged.taxi, staged.month, staged.bucket
    profile = profile_object(taxi, month)
    for name in staged.objects:
        if name != profile:
            hook.copy(bucket, staged.staged(name), bucket, name)
    name = f"{file_stem(taxi, month)}.parquet"
    old_days = gcs.owned_objects(hook, bucket, by_day_prefix(taxi), name)
    stale = [day for day in old_days if day not in staged.objects]
    if rejects_object(taxi, month) not in staged.objects and hook.exists(bucket, rejects_object(taxi, month)):
        stale.append(rejects_object(taxi, month))
    gcs.delete(hook, bucket, stale)
    values = _read_profile(hook, bucket, staged.staged(profile))
    values["published_at"] = datetime.now(timezone.utc).isoformat()
    hook.upload(bucket, profile, data=json.dumps(values, indent=1), mime_type="application/json")
    lineage.copied_in_gcs(
        bucket, {staged.staged(name): name for name in staged.objects}, counted_rows(staged)
    )
    uri = f"gs://{bucket}/{month_object(taxi, month)}"
    log.info(
        "Published %d rows of %s %s: %s and %d daily partitions",
        staged.rows_loaded,
        taxi,
        month,
        uri,
        staged.partitions,
    )
    return {"taxi": taxi, "month": month, "uri": uri, "rows": staged.rows_loaded}


def drop_staging(hook: GCSHook, bucket: str, taxi: str, month: Month | str, run_id: str) -> None:
    """Delete what this run staged for the month (a teardown's job)."""
    gcs.delete_prefix(hook, bucket, staging_prefix(taxi, month, run_id))
