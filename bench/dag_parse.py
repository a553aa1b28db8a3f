"""Time how long Airflow takes to parse the DAG folder: ``python -m bench.dag_parse`` prints JSON.

Run in a fresh interpreter so no module is already imported. Airflow itself is imported before the
clock starts: every parse in a DAG processor pays for it once, whatever the DAG files do. Each file
is parsed by its own ``DagBag``, so the modules it adds are attributed to it; a heavy library
imported at the top of a DAG file would cost every parse of the folder, every few seconds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DAGS_FOLDER = REPO / "dags"
HEAVY_MODULES = ("pandas", "pyarrow", "google.cloud")


def main() -> None:
    import airflow.sdk  # noqa: F401  (Airflow's own import is not the DAG files' cost)
    from airflow.dag_processing.dagbag import DagBag

    total = 0.0
    files: dict[str, dict[str, float | list[str]]] = {}
    dag_ids: list[str] = []
    import_errors: dict[str, str] = {}
    for path in sorted(DAGS_FOLDER.glob("*.py")):
        before = set(sys.modules)
        started = time.perf_counter()
        bag = DagBag(dag_folder=path)
        seconds = time.perf_counter() - started
        total += seconds
        heavy = sorted(name for name in set(sys.modules) - before if name.startswith(HEAVY_MODULES))
        files[path.name] = {"seconds": seconds, "heavy_modules": heavy}
        dag_ids += bag.dag_ids
        import_errors |= bag.import_errors
    print(
        json.dumps(
            {
                "seconds": total,
                "files": files,
                "dag_ids": sorted(dag_ids),
                "import_errors": import_errors,
            }
        )
    )


if __name__ == "__main__":
    main()
