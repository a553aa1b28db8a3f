"""The work of the DAGs in ``dags/``: plain, typed, tested functions, in the order a month travels.

- ``source``: where a month comes from: the families' declarations, the sources and their
  months, waiting for and downloading a file, reading it with its declared schema, cleaning it;
- ``checks``: what a month must be before anyone reads it: its profile, the checks, the anomaly test;
- ``destinations``: where it lands, each behind one contract (``destinations.base``): Postgres,
  GCS, BigQuery;
- ``observing``: what people see of it: alerts, lineage, the Taxi results view, progress, charts;
- ``flows``: how the DAGs are put together: shared defaults, schedules, assets, and each DAG's task
  bodies in a module named after it (``dags/<dag_id>.py`` → ``include/flows/<dag_id>.py``).

``errors`` holds the project's exception classes, which decide what a retry can mend.
"""
