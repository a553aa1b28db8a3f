"""Each DAG's task bodies, in a module named after the DAG (dags/<dag_id>.py → include/flows/<dag_id>.py)."""
