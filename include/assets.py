"""The assets the DAGs publish and consume: Airflow 3's asset-aware scheduling across DAGs."""

from airflow.sdk import Asset

# The taxi Parquet in GCS. Each event's extra names what was written: taxi, month, bucket, objects.
TAXI_PARQUET = Asset(name="nyc_taxi_parquet", group="nyc_taxi")

# A month of one family published in Postgres ({pg_schema}.{taxi}_tripdata). Each event's extra
# names taxi and month; the warehouse models rebuild the months it names.
TAXI_POSTGRES_MONTH = Asset(name="nyc_taxi_postgres_month", group="nyc_taxi")

# A month of one family loaded into BigQuery ({bq_dataset}.{taxi}_tripdata). Each event's extra
# names taxi and month; the warehouse models rebuild the months it names.
TAXI_BIGQUERY_MONTH = Asset(name="nyc_taxi_bigquery_month", group="nyc_taxi")
