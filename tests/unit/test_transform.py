import datetime as dt

import pyarrow as pa

from include.source.extract import iter_batches
from include.source.families import schema_for
from include.source.transform import GREEN_ETL_RULES, MONTHLY_RULES, CleaningReport, add_pickup_date, clean
from tests.samples import GREEN_2020_10, YELLOW_2021_01, read_with_pandas


def _cleaned(path, taxi, rules):
    schema = schema_for(taxi)
    report = CleaningReport()
    table = pa.Table.from_batches(list(clean(iter_batches(path, schema), schema, rules, report)))
    return table, report


def test_monthly_rules_drop_only_trips_with_zero_passengers():
    table, report = _cleaned(YELLOW_2021_01, "yellow", MONTHLY_RULES)
    source = read_with_pandas(YELLOW_2021_01)
    zero_passengers = int((source.passenger_count == 0).sum())
    assert zero_passengers > 0
    assert report.rows_read == len(source)
    assert report.dropped == {"missing_pickup_time": 0, "no_passengers": zero_passengers}
    assert table.num_rows == report.rows_kept == len(source) - zero_passengers
    assert pa.compute.min(table.column("passenger_count")).as_py() > 0


def test_monthly_rules_keep_unknown_passenger_counts():
    table, _ = _cleaned(GREEN_2020_10, "green", MONTHLY_RULES)
    source = read_with_pandas(GREEN_2020_10)
    assert table.column("passenger_count").null_count == source.passenger_count.isna().sum() > 0


def test_green_rules_count_each_dropped_row_against_its_first_broken_rule():
    table, report = _cleaned(GREEN_2020_10, "green", GREEN_ETL_RULES)
    source = read_with_pandas(GREEN_2020_10)
    bad_passengers = ~(source.passenger_count > 0)
    bad_distance = ~(source.trip_distance > 0) & ~bad_passengers
    assert report.dropped == {
        "passengers_not_positive": int(bad_passengers.sum()),
        "distance_not_positive": int(bad_distance.sum()),
    }
    kept = source[(source.passenger_count > 0) & (source.trip_distance > 0)]
    assert table.num_rows == len(kept)
    assert "dropped by rule: passengers_not_positive" in report.describe()


def test_add_pickup_date_takes_the_calendar_date_of_the_pickup():
    batch = next(iter_batches(GREEN_2020_10, schema_for("green")))
    with_date = add_pickup_date(batch, "lpep_pickup_datetime", "lpep_pickup_date")
    assert with_date.schema.field("lpep_pickup_date").type == pa.date32()
    pickups = batch.column("lpep_pickup_datetime").to_pylist()
    assert with_date.column("lpep_pickup_date").to_pylist() == [p.date() for p in pickups]
    assert isinstance(with_date.column("lpep_pickup_date")[0].as_py(), dt.date)
