"""Start, stop or describe the local stack and its Airflow UI.

``python -m local_stack {up,down,env,report,ui,ui-stop}``: ``ui`` starts the Airflow web UI on
``127.0.0.1:$LOCAL_AIRFLOW_PORT`` (default 8080) against the stack, with the login ``admin`` and
the password in ``$LOCAL_AIRFLOW_PASSWORD`` (default ``admin``: a loopback-only local login).
"""

from __future__ import annotations

import argparse
import os

from local_stack.airflow_ui import DEFAULT_PASSWORD, USERNAME, AirflowUI
from local_stack.stack import REPO, Stack


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m local_stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "env", "report", "ui", "ui-stop"])
    parser.add_argument("--state", default=str(REPO / ".state"), help="state folder (default: .state)")
    args = parser.parse_args()
    stack = Stack(REPO / args.state)
    ui = AirflowUI(
        stack.state / "airflow-ui",
        port=int(os.environ.get("LOCAL_AIRFLOW_PORT", "8080")),
        password=os.environ.get("LOCAL_AIRFLOW_PASSWORD", DEFAULT_PASSWORD),
    )
    if args.command == "up":
        stack.up()
        print(f"Local stack is up; its environment is in {stack.env_file}")
    elif args.command == "down":
        ui.stop()  # its tasks need the services
        stack.down()
        print("Local stack stopped")
    elif args.command == "env":
        print(stack.env_file.read_text(), end="")
    elif args.command == "ui":
        start_ui(stack, ui)
    elif args.command == "ui-stop":
        ui.stop()
        print("Airflow UI stopped")
    else:
        # The hooks log every job they insert; only the report itself is wanted here.
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
        from local_stack.report import main as report  # imports Airflow: only when asked for

        report()


def start_ui(stack: Stack, ui: AirflowUI) -> None:
    """Start the UI on the stack's connections and variables (the stack must be up) and say how to log in."""
    if ui.is_running():
        print(f"The Airflow UI is already running (logs in {ui.folder}); stop it with scripts/ui.sh stop")
        return
    if not stack.env_file.exists():
        raise SystemExit("The local stack is not up: run python -m local_stack up first")
    print("Starting the Airflow UI (api-server, scheduler, dag-processor, triggerer)...")
    try:
        ui.start({**os.environ, **stack.env()})
    except (RuntimeError, TimeoutError) as error:
        raise SystemExit(str(error)) from error
    password = "admin" if ui.password == DEFAULT_PASSWORD else "the one in LOCAL_AIRFLOW_PASSWORD"
    print(f"Airflow UI: {ui.url}  (user {USERNAME}, password {password})")
    print(f"Logs: {ui.folder}/*.log; stop it with scripts/ui.sh stop")


if __name__ == "__main__":
    main()
