"""The steps of ``taxi_api_to_gcs``: write a month of one colour to GCS as Parquet.

The month goes to the bucket twice: one file for the month, and one file per pickup day in a
Hive-partitioned dataset.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from include import gcs
from include.extract import Rejects, iter_batches
from include.parquet import write_daily_partitions, write_parquet
from include.sources import MonthRequest
from include.transform import MONTHLY_RULES, CleaningReport, clean

if TYPE_CHECKING:
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParquetExport:
    """What a month's export to GCS wrote: small and flat, so it travels as an XCom and asset extra."""

    taxi: str
    month: str
    bucket: str
    month_object: str
    dataset_prefix: str
    rows: int
    partitions: int
    dropped_by_rule: dict[str, int]
    rows_rejected: int
    outside_month: int


def export_month_to_gcs(hook: GCSHook, path: Path, request: MonthRequest, bucket: str) -> ParquetExport:
    """Write the cleaned month as one Parquet file and as daily partitions, replacing the month's objects.

    Layout: ``{taxi}/{taxi}_tripdata_{YYYY-MM}.parquet`` and
    ``{taxi}_trips/pickup_date=YYYY-MM-DD/{taxi}_tripdata_{YYYY-MM}.parquet``. A day's partition
    holds one file per source month, so a stray pickup from another month's file never makes one
    month's rerun overwrite another month's rows. Unreadable rows, if any, are kept in
    ``{taxi}_rejects/{taxi}_tripdata_{YYYY-MM}.csv``. Everything is written locally first, so a
    failure while reading uploads nothing.
    """
    schema = request.schema
    file_name = f"{request.taxi}_tripdata_{request.month}.parquet"
    dataset_prefix = f"{request.taxi}_trips"
    rejects_prefix = f"{request.taxi}_rejects"
    report, rejects = CleaningReport(), Rejects(path.name)
    with tempfile.TemporaryDirectory(prefix="parquet-") as folder:
        month_file = Path(folder) / file_name
        batches = clean(iter_batches(path, schema, rejects), schema, MONTHLY_RULES, report, request.month)
        rows = write_parquet(batches, schema.arrow_schema, month_file)
        partitions = write_daily_partitions(
            month_file, schema.pickup_column, "pickup_date", Path(folder) / "days"
        )
        month_object = f"{request.taxi}/{file_name}"
        gcs.upload(hook, bucket, {month_object: month_file})
        daily = {p.object_name(dataset_prefix, "pickup_date", file_name): p.path for p in partitions}
        gcs.replace_objects(hook, bucket, dataset_prefix, file_name, daily)
        rejects_file = Path(folder) / f"{request.taxi}_tripdata_{request.month}.csv"
        kept = {}
        if rejects.rows:
            rejects.write_csv(rejects_file)
            kept = {f"{rejects_prefix}/{rejects_file.name}": rejects_file}
        # With no rejects, an earlier run's rejects object of this month is deleted.
        kept_uris = gcs.replace_objects(hook, bucket, rejects_prefix, rejects_file.name, kept, "text/csv")
    log.info("%s: %s", path.name, report.describe())
    if kept_uris:
        log.warning("%d unreadable row(s) of %s kept in %s", len(rejects.rows), path.name, *kept_uris)
    log.info(
        "Wrote %d rows to gs://%s/%s and %d daily partitions", rows, bucket, month_object, len(partitions)
    )
    return ParquetExport(
        request.taxi,
        str(request.month),
        bucket,
        month_object,
        dataset_prefix,
        rows,
        len(partitions),
        dict(report.dropped),
        len(rejects.rows),
        report.outside_month,
    )
