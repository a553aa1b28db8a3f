"""``check_anomalies``: compare the staged month with the months before it; a person decides on
the flags that say ``ask``.

Between ``audit`` and ``publish`` in every family's task group (``include.flows.load_month``), one
task (a process less per month than a check and a separate review):

- the staged profile is compared with the family's trailing published months
  (``include.flows.load_month.check_anomalies``); the flags are stored with the profile and
  emailed; a flag whose action is ``fail`` fails the task, so the month is not published;
- no flag asks: the task succeeds and ``publish`` goes on;
- a flag asks: the task asks through the standard provider's ``ApprovalOperator`` — the month's
  flags and a link to its chart in Taxi results on the UI's required-actions page, and an email
  with the link if alerts are set up — and waits in Airflow 3.3's ``awaiting_input`` state, which
  holds no worker slot. The month stays staged; readers see what was published before;
- **Approve**: the review is stored with the month's profile (``Destination.record_review``) and
  ``publish`` runs;
- **Reject**: the review is stored, and the task fails with who rejected it and why (``MonthRejectedError``),
  so the failure alert goes out, ``publish`` does not run and the teardown drops the staging;
- no answer within ``anomaly_review_timeout`` seconds: Airflow's scheduler answers with the default,
  ``anomaly_review_default`` (``reject`` unless set), as above but stored as timed out.

What is asked and decided is plain Python in ``include.checks.review``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk import Param

from include.checks.review import DEFAULT_TIMEOUT, REJECT

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.definitions.xcom_arg import XComArg

# Where plugins/taxi_results.py mounts the results view on the api-server.
RESULTS_URL_PREFIX = "/taxi-results"


# The XCom of the flags found, which the answer (a later process) is stored with.
ANOMALIES_KEY = "anomalies"


class CheckAnomalies(ApprovalOperator):
    """Flag a staged month's features out of their usual range; ask a person about those set to ``ask``.

    ``staged`` is the XCom of the family's ``stage``; ``destination`` the dotted path of the
    destination, which holds the history and stores the flags and the review. Returns the flags
    (as ``Anomaly.as_json``), or the review when a person was asked.
    """

    template_fields = (*ApprovalOperator.template_fields, "staged")
    ui_color = "#fefcbf"

    def __init__(self, *, destination: str, staged: XComArg | dict, **kwargs: Any) -> None:
        # The DAG's params reach every operator through default_args; the form asks only the reason.
        kwargs.pop("params", None)
        super().__init__(
            subject="Review the month's anomalies",  # replaced in execute, once the flags are known
            defaults=REJECT,  # replaced in execute by the Variable anomaly_review_default
            response_timeout=DEFAULT_TIMEOUT,  # likewise, anomaly_review_timeout
            params={
                "reason": Param(
                    "",
                    type="string",
                    title="Reason",
                    description="Why you approve or reject the month: stored with its profile.",
                )
            },
            **kwargs,
        )
        # Retries as every task's: a reject fails at once (MonthRejectedError is a DataQualityError,
        # include.flows.defaults.RETRY_POLICY); a fault storing the review asks again on the next try.
        self.destination = destination
        self.staged = staged

    def execute(self, context: Context) -> Any:
        from airflow.sdk import Variable

        from include.checks.quality import parse_actions
        from include.checks.review import ReviewSettings, asking, request_text
        from include.destinations.base import destination_class
        from include.flows.load_month import check_anomalies
        from include.observing.alerts import notify_anomalies, notify_review_requested

        taxi, month = self.staged["taxi"], self.staged["month"]
        actions = parse_actions(Variable.get("anomaly_actions", default=None))
        with destination_class(self.destination).from_airflow() as target:
            staged = target.staged_type.from_dict(self.staged)
            anomalies = [anomaly.as_json() for anomaly in check_anomalies(target, staged, actions)]
        notify_anomalies(context, taxi, month, anomalies)
        if not asking(anomalies):
            self.log.info("No anomaly flag of %s %s asks for a review: publishing without one", taxi, month)
            return anomalies
        context["ti"].xcom_push(key=ANOMALIES_KEY, value=anomalies)
        settings = ReviewSettings.parse(
            Variable.get("anomaly_review_timeout", default=None),
            Variable.get("anomaly_review_default", default=None),
        )
        self.response_timeout = settings.timeout
        self.defaults = [settings.default_option]
        self.subject, self.body = request_text(taxi, month, anomalies, self._chart_link(), settings)
        try:
            link = HITLOperator.generate_link_to_ui_from_context(context=context)
        except ValueError:  # no api.base_url: the email names the task instead
            link = f"{context['ti'].dag_id} / {context['ti'].run_id} / {context['ti'].task_id}"
        notify_review_requested(context, self.subject, link)
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """The answer (or the default, on a timeout): store it with the profile, then publish or fail."""
        from include.checks.review import rejection_message, review_record
        from include.destinations.base import destination_class
        from include.errors import MonthRejectedError

        HITLOperator.execute_complete(self, context=context, event=event)  # validates the answer
        anomalies = context["ti"].xcom_pull(task_ids=self.task_id, key=ANOMALIES_KEY)
        review = review_record(event, anomalies, self._chart_link())
        with destination_class(self.destination).from_airflow() as target:
            target.record_review(target.staged_type.from_dict(self.staged), review)
        taxi, month = self.staged["taxi"], self.staged["month"]
        if review["decision"] == "reject":
            raise MonthRejectedError(rejection_message(taxi, month, review))
        who = "nobody answered: the default" if review["timed_out"] else f"{review['by']} approved"
        self.log.info("%s %s will be published: %s", taxi, month, who)
        return review

    def _chart_link(self) -> str | None:
        """The month's chart in Taxi results, if the results view shows this destination's loads."""
        from airflow.sdk import conf

        from include.destinations.base import destination_class

        base_url = conf.get("api", "base_url", fallback=None)
        if not base_url or not destination_class(self.destination).shown_in_results:
            return None
        query = urlencode(
            {"taxi": self.staged["taxi"], "month": self.staged["month"], "run_id": self.staged["run_id"]}
        )
        return f"{base_url.rstrip('/')}{RESULTS_URL_PREFIX}/?{query}#chart"
