"""The dbt project follows the family declaration: every declared family has its staging model."""

from pathlib import Path

import yaml

from include.source.families import TAXIS

DBT = Path(__file__).resolve().parents[2] / "include" / "dbt"
STAGING = DBT / "models" / "staging"


def test_every_declared_family_has_a_source_table_a_staging_model_and_its_tests():
    sources = yaml.safe_load((STAGING / "sources.yml").read_text())["sources"]
    [tlc] = [source for source in sources if source["name"] == "tlc"]
    staging = {
        model["name"]: model for model in yaml.safe_load((STAGING / "staging.yml").read_text())["models"]
    }

    assert sorted(table["name"] for table in tlc["tables"]) == sorted(f"{taxi}_tripdata" for taxi in TAXIS)
    assert sorted(path.stem for path in STAGING.glob("stg_*.sql")) == sorted(
        f"stg_{t}_tripdata" for t in TAXIS
    )
    for taxi in TAXIS:
        model = f"stg_{taxi}_tripdata"
        assert f"stg_tripdata('{taxi}')" in (STAGING / f"{model}.sql").read_text(), model
        [reconciliation] = staging[model]["data_tests"]
        assert reconciliation["row_count_per_month_matches"]["arguments"]["loaded"] == (
            f"source('tlc', '{taxi}_tripdata')"
        ), model
        assert {column["name"] for column in staging[model]["columns"]} >= {"trip_id", "service_type"}, model
