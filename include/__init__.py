"""The work of the DAGs in ``dags/``: plain, typed, tested functions with no Airflow scheduling logic."""
