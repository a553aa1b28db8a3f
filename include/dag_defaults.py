"""Settings every DAG of this repository shares: ownership, retries, and which errors are final.

Retries exist for faults that pass (a restarted database, a network blip). An unpublished month or
invalid input fails the same way on every try, so those errors fail the task at once instead of
spending its retries and hiding the message behind a wait.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

FAIL_AT_ONCE = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            # ValueError covers invalid params and unreadable input (pyarrow's ArrowInvalid too).
            exception=["include.errors.SourceNotPublishedError", "builtins.ValueError"],
            action=RetryAction.FAIL,
            reason="the source or the input is invalid; another try would fail the same way",
        )
    ]
)

DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "retry_policy": FAIL_AT_ONCE,
}
