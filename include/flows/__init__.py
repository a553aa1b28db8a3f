"""How the DAGs are put together: defaults every DAG shares (``defaults``), their schedules
(``timetables``) and assets (``assets``), and each DAG's task bodies in a module named after it
(``dags/<dag_id>.py`` → ``include/flows/<dag_id>.py``)."""
