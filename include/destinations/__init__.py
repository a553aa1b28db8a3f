"""Where a month lands, each destination behind one contract (``base.Destination``): stage the month,
give the checks its profile and history, publish it, drop what was not published, and report what
it wrote for lineage. ``postgres`` and ``gcs`` are loaded from the source; ``bigquery`` from GCS."""
