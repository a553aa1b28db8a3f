"""Start, stop or describe the local stack: ``python -m local_stack {up,down,env,report}``."""

from __future__ import annotations

import argparse

from local_stack.stack import REPO, Stack


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m local_stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "env", "report"])
    parser.add_argument("--state", default=str(REPO / ".state"), help="state folder (default: .state)")
    args = parser.parse_args()
    stack = Stack(REPO / args.state)
    if args.command == "up":
        stack.up()
        print(f"Local stack is up; its environment is in {stack.env_file}")
    elif args.command == "down":
        stack.down()
        print("Local stack stopped")
    elif args.command == "env":
        print(stack.env_file.read_text(), end="")
    else:
        from local_stack.report import main as report  # imports Airflow: only when asked for

        report()


if __name__ == "__main__":
    main()
