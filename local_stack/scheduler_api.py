"""Drive a running Airflow through its REST API (v2), as an operator or a CI job would.

:class:`SchedulerHarness` creates runs (a trigger or a backfill), unpauses DAGs, waits for runs to
reach a final state, and reads task instances and task logs. It talks only HTTP to the api-server
started by ``local_stack/airflow_processes.py``; everything else (scheduling, deadlines,
callbacks) is the real scheduler's, dag-processor's and triggerer's doing. The scheduler tests
and the backfill benchmark drive Airflow through it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import requests

from local_stack.airflow_ui import USERNAME, AirflowUI

FINAL_RUN_STATES = frozenset({"success", "failed"})


class AirflowApiError(RuntimeError):
    """The API answered with an error; the message has the method, path, status and body."""


@dataclass
class SchedulerHarness:
    """The REST API of ``airflow``, logged in as the admin user of the SimpleAuthManager."""

    airflow: AirflowUI
    _session: requests.Session = field(default_factory=requests.Session, init=False, repr=False)

    @property
    def url(self) -> str:
        return self.airflow.url

    def log_in(self) -> None:
        response = requests.post(
            f"{self.url}/auth/token",
            json={"username": USERNAME, "password": self.airflow.password},
            timeout=30,
        )
        if response.status_code != 201:
            raise AirflowApiError(f"log-in failed: HTTP {response.status_code} {response.text[:500]}")
        self._session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``/api/v2{path}`` and return the decoded JSON (None for an empty answer)."""
        response = self._session.request(method, f"{self.url}/api/v2{path}", timeout=60, **kwargs)
        if not response.ok:
            raise AirflowApiError(f"{method} {path}: HTTP {response.status_code} {response.text[:2000]}")
        return response.json() if response.content else None

    # --- setup ----------------------------------------------------------------------------

    def pools(self) -> dict[str, int]:
        """``{pool: slots}`` of every pool."""
        return {pool["name"]: pool["slots"] for pool in self.api("GET", "/pools")["pools"]}

    def set_variable(self, key: str, value: str) -> None:
        """Set a Variable in the metadata DB (an ``AIRFLOW_VAR_*`` in the processes' env wins over it)."""
        try:
            self.api("PATCH", f"/variables/{quote(key, safe='')}", json={"key": key, "value": value})
        except AirflowApiError as error:
            if "HTTP 404" not in str(error):
                raise
            self.api("POST", "/variables", json={"key": key, "value": value})

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict:
        """The DAG once the dag-processor has parsed it; fails at once on an import error."""
        deadline = time.monotonic() + timeout
        while True:
            errors = self.api("GET", "/importErrors")["import_errors"]
            if errors:
                raise AssertionError(f"the DAG folder has import errors: {errors}")
            try:
                return self.api("GET", f"/dags/{dag_id}")
            except AirflowApiError as error:
                if "HTTP 404" not in str(error) or time.monotonic() > deadline:
                    raise
            time.sleep(1)

    def unpause(self, dag_id: str) -> None:
        self.wait_for_dag(dag_id)
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def pause(self, dag_id: str) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": True})

    # --- runs -----------------------------------------------------------------------------

    def trigger(self, dag_id: str, conf: dict | None = None, logical_date: datetime | None = None) -> str:
        """Create a manual run (queued at once) and return its run id. No logical date by default."""
        body = {"conf": conf or {}, "logical_date": logical_date.isoformat() if logical_date else None}
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def backfill(
        self,
        dag_id: str,
        from_date: date | datetime,
        to_date: date | datetime,
        reprocess_behavior: str = "none",
        max_active_runs: int = 10,
        conf: dict | None = None,
    ) -> dict:
        """Create a backfill, as ``airflow backfill create`` does; returns it (its ``id`` and dates)."""
        body = {
            "dag_id": dag_id,
            "from_date": _iso(from_date),
            "to_date": _iso(to_date),
            "reprocess_behavior": reprocess_behavior,
            "max_active_runs": max_active_runs,
            "dag_run_conf": conf or {},
        }
        return self.api("POST", "/backfills", json=body)

    def backfill_cli(
        self,
        dag_id: str,
        from_date: date,
        to_date: date,
        reprocess_behavior: str = "none",
        max_active_runs: int = 10,
        conf: dict | None = None,
    ) -> dict:
        """Create a backfill with ``airflow backfill create``, as an operator at a shell would;
        returns it as the API shows it (its ``id`` and dates)."""
        self.wait_for_dag(dag_id)
        arguments = [
            *("backfill", "create", "--dag-id", dag_id),
            *("--from-date", from_date.isoformat(), "--to-date", to_date.isoformat()),
            *("--reprocess-behavior", reprocess_behavior, "--max-active-runs", str(max_active_runs)),
        ]
        self.airflow.cli(*arguments, *(["--dag-run-conf", json.dumps(conf)] if conf is not None else []))
        return self.backfills(dag_id)[-1]

    def backfills(self, dag_id: str) -> list[dict]:
        """Every backfill of ``dag_id``, oldest first."""
        return self.api("GET", "/backfills", params={"dag_id": dag_id, "order_by": "id"})["backfills"]

    def wait_for_backfill(self, backfill: dict, timeout: float = 600) -> dict:
        """The backfill once the scheduler has marked it complete (none of its runs queued or running)."""
        deadline = time.monotonic() + timeout
        while (found := self.api("GET", f"/backfills/{backfill['id']}"))["completed_at"] is None:
            if time.monotonic() > deadline:
                states = {run["dag_run_id"]: run["state"] for run in self.runs(backfill["dag_id"])}
                raise TimeoutError(f"backfill {backfill['id']} not complete after {timeout:.0f} s: {states}")
            time.sleep(2)
        return found

    def runs(self, dag_id: str) -> list[dict]:
        """Every run of ``dag_id``, oldest logical date first (runs without one last)."""
        order = {"limit": 1000, "order_by": "logical_date"}
        return self.api("GET", f"/dags/{dag_id}/dagRuns", params=order)["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict:
        """The run once it is ``success`` or ``failed``; on timeout, the error lists its task states."""
        deadline = time.monotonic() + timeout
        while (run := self.run(dag_id, run_id))["state"] not in FINAL_RUN_STATES:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{dag_id} run {run_id} still {run['state']} after {timeout:.0f} s; "
                    f"tasks: {self.task_states(dag_id, run_id)}; logs in {self.airflow.folder.parent}"
                )
            time.sleep(1)
        return run

    def wait_for_runs(self, dag_id: str, count: int, timeout: float = 600) -> list[dict]:
        """All runs of ``dag_id`` once there are at least ``count`` and every one is final."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.runs(dag_id)
            if len(runs) >= count and all(run["state"] in FINAL_RUN_STATES for run in runs):
                return runs
            if time.monotonic() > deadline:
                states = {run["dag_run_id"]: run["state"] for run in runs}
                raise TimeoutError(f"{dag_id}: expected {count} final runs within {timeout:.0f} s: {states}")
            time.sleep(2)

    def wait_for_log_line(self, component: str, text: str, *more: str, timeout: float = 60) -> str:
        """The first line of a component's log (``scheduler``, ``triggerer``...) that contains ``text``
        (and each of ``more``)."""
        log_file = self.airflow.log_file(component)
        wanted = (text, *more)
        deadline = time.monotonic() + timeout
        while True:
            lines = log_file.read_text(errors="replace").splitlines() if log_file.exists() else []
            found = next((line for line in lines if all(part in line for part in wanted)), None)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"no line with {wanted!r} in {log_file} within {timeout:.0f} s")
            time.sleep(1)

    # --- task instances -------------------------------------------------------------------

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances"
        return self.api("GET", path, params={"limit": 1000})["task_instances"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``{task_id: state}``, with ``task_id[i]`` for each mapped instance."""
        states = {}
        for ti in self.task_instances(dag_id, run_id):
            key = ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"
            states[key] = ti["state"]
        return states

    def wait_for_task_state(
        self, dag_id: str, run_id: str, task_id: str, state: str, timeout: float = 300
    ) -> dict[str, str | None]:
        """Every task's state once ``task_id`` is in ``state``; fails at once if the run ended first."""
        deadline = time.monotonic() + timeout
        while (states := self.task_states(dag_id, run_id)).get(task_id) != state:
            if self.run(dag_id, run_id)["state"] in FINAL_RUN_STATES or time.monotonic() > deadline:
                raise AssertionError(f"{task_id} of {run_id} never reached {state}: {states}")
            time.sleep(1)
        return states

    # --- human in the loop ----------------------------------------------------------------

    def _hitl_path(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        run = quote(run_id, safe="")
        return f"/dags/{dag_id}/dagRuns/{run}/taskInstances/{task_id}/{map_index}/hitlDetails"

    def hitl_detail(self, dag_id: str, run_id: str, task_id: str) -> dict:
        """What a human-in-the-loop task asks (subject, body, options, params) and its answer, if any."""
        return self.api("GET", self._hitl_path(dag_id, run_id, task_id))

    def hitl_details(self, dag_id: str, run_id: str) -> list[dict]:
        """Every human-in-the-loop request of a run."""
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/hitlDetails")["hitl_details"]

    def respond(
        self, dag_id: str, run_id: str, task_id: str, option: str, params_input: dict | None = None
    ) -> dict:
        """Answer a waiting human-in-the-loop task as the logged-in user, as the UI's form does.

        Only once the scheduler has seen the task's process end in ``awaiting_input``: an answer
        before that (a script is faster than a person) resumes the task while the scheduler still
        expects the first process's exit, which Airflow 3.3 takes for a task killed from outside:
        the try fails, the next asks again and the answer is lost (seen on a loaded CI machine).
        """
        self.wait_for_log_line(
            "scheduler",
            f"TaskInstance Finished: dag_id={dag_id}, task_id={task_id}, run_id={run_id},",
            "state=awaiting_input",
        )
        body = {"chosen_options": [option], "params_input": params_input or {}}
        return self.api("PATCH", self._hitl_path(dag_id, run_id, task_id), json=body)

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> str:
        """The task's log as text, one line per entry, exceptions as ``Type: message`` lines."""
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/logs/{try_number}"
        answer = self.api("GET", path, params={"full_content": "true", "map_index": map_index})
        return "\n".join(_log_lines(answer["content"]))


def _log_lines(entries: list[dict | str]) -> Iterator[str]:
    """The API's structured log entries as the UI prints them, roughly."""
    for entry in entries:
        if isinstance(entry, str):
            yield entry
            continue
        fields = {key: value for key, value in entry.items() if key not in _LOG_LINE_KEYS}
        yield " ".join(
            [str(entry.get("timestamp", "")), f"[{entry.get('level', '')}]", str(entry.get("event", ""))]
            + [f"{key}={value}" for key, value in fields.items()]
        )
        for detail in entry.get("error_detail") or []:
            yield f"{detail.get('exc_type')}: {detail.get('exc_value')}"


_LOG_LINE_KEYS = {"timestamp", "level", "event", "logger", "error_detail", "sources"}


def _iso(moment: date | datetime) -> str:
    """ISO 8601 with a time zone, as the API wants it; a naive date or datetime is taken as UTC."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    return moment.isoformat() if moment.tzinfo else moment.isoformat() + "Z"
