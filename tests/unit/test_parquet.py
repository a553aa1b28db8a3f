"""Daily Parquet partitions written while a month streams past, on real rows of green 2020-10."""

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from include.destinations.parquet import DailyPartitionWriter, write_daily_partitions, write_parquet
from include.source.extract import iter_batches
from include.source.families import schema_for
from include.source.months import Month
from include.source.transform import MONTHLY_RULES, CleaningReport, clean, with_source_month
from local_stack import expected
from tests.samples import GREEN_2020_10

OCTOBER = Month(2020, 10)
GREEN = schema_for("green")
PICKUP = GREEN.pickup_column


def month_batches(batch_rows: int = 4_000) -> list[pa.RecordBatch]:
    """The cleaned month as the GCS flow streams it: small batches, several days in each."""
    read = iter_batches(GREEN_2020_10, GREEN, batch_rows=batch_rows, block_bytes=64 << 10)
    return list(with_source_month(clean(read, GREEN, MONTHLY_RULES, CleaningReport(), OCTOBER), OCTOBER))


@pytest.fixture(scope="module")
def month() -> pa.Table:
    return pa.Table.from_batches(month_batches(), GREEN.table_schema)


def day_of(path) -> date:
    return date.fromisoformat(path.parent.name.split("=", 1)[1])


def test_one_file_per_pickup_day_with_every_row_of_the_day_in_stream_order(month, tmp_path):
    with DailyPartitionWriter(tmp_path, GREEN.table_schema, "pickup_date", PICKUP) as days:
        for batch in month.to_batches():
            days.write(batch)
        partitions = days.close()

    per_day = expected.rows_per_day(GREEN_2020_10)  # pandas, from the file itself
    assert [p.day for p in partitions] == sorted(per_day)
    assert sorted(p.path.relative_to(tmp_path).as_posix() for p in partitions) == sorted(
        f"pickup_date={day}/part-0.parquet" for day in per_day
    )
    pickup_days = pc.cast(month.column(PICKUP), pa.date32())
    for partition in partitions:
        written = pq.read_table(partition.path)
        assert written.schema == GREEN.table_schema  # the day lives in the path, not in the file
        assert written.num_rows == per_day[partition.day]
        assert written.equals(month.filter(pc.equal(pickup_days, partition.day)))


def test_holds_at_most_its_bound_of_pending_rows_and_writes_row_groups_as_days_fill(month, tmp_path):
    """Days come interleaved in a TLC file: memory is bounded by pending rows, not the month's size."""
    batches = month.to_batches(max_chunksize=2_000)
    days = DailyPartitionWriter(
        tmp_path, GREEN.table_schema, "pickup_date", PICKUP, row_group_rows=1_000, max_pending_rows=5_000
    )
    most_pending = 0
    for batch in batches:
        days.write(batch)
        most_pending = max(most_pending, days.pending_rows)
    partitions = days.close()

    assert 0 < most_pending <= 5_000
    assert days.pending_rows == 0 and days.rows == month.num_rows
    metadata = [pq.read_metadata(p.path) for p in partitions]
    groups = [m.row_group(i).num_rows for m in metadata for i in range(m.num_row_groups)]
    # A day's group is written once it reaches 1,000 rows (plus what the last batch brought).
    assert max(groups) < 1_000 + 2_000
    assert len(groups) > len(partitions)  # the busy days were written in several row groups
    assert sum(m.num_rows for m in metadata) == month.num_rows


def test_observe_passes_the_stream_on_unchanged_while_writing_it(month, tmp_path):
    with DailyPartitionWriter(tmp_path / "days", GREEN.table_schema, "pickup_date", PICKUP) as days:
        rows = write_parquet(days.observe(month.to_batches()), GREEN.table_schema, tmp_path / "month.parquet")
        partitions = days.close()
    assert rows == month.num_rows == sum(pq.read_metadata(p.path).num_rows for p in partitions)
    assert pq.read_table(tmp_path / "month.parquet").equals(month)


def test_a_file_that_carries_its_day_is_split_by_it_and_the_column_left_out(month, tmp_path):
    with_day = month.append_column("pickup_date", pc.cast(month.column(PICKUP), pa.date32()))
    pq.write_table(with_day, tmp_path / "month.parquet")

    partitions = write_daily_partitions(tmp_path / "month.parquet", None, "pickup_date", tmp_path / "days")

    assert {p.day: pq.read_metadata(p.path).num_rows for p in partitions} == expected.rows_per_day(
        GREEN_2020_10
    )
    assert pq.read_schema(partitions[0].path) == GREEN.table_schema


def test_a_row_without_a_day_fails_the_write(month, tmp_path):
    batch = month.slice(0, 10).to_batches()[0]
    pickups = pa.array([None, *batch.column(PICKUP).to_pylist()[1:]], batch.column(PICKUP).type)
    broken = batch.set_column(batch.schema.get_field_index(PICKUP), PICKUP, pickups)
    with (
        pytest.raises(ValueError, match="1 row"),
        DailyPartitionWriter(tmp_path, GREEN.table_schema, "pickup_date", PICKUP) as days,
    ):
        days.write(broken)
