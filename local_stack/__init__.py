"""The local stand-ins for the services the DAGs use: Postgres, the TLC mirror, GCS and BigQuery."""
