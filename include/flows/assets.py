"""The assets the DAGs publish and consume: Airflow 3's asset-aware scheduling across DAGs."""

from airflow.sdk import Asset

# The taxi Parquet in GCS. Each event's extra names what was written: taxi, month, bucket, objects.
TAXI_PARQUET = Asset(name="nyc_taxi_parquet", group="nyc_taxi")
