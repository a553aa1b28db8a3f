"""``review_anomalies``: a person approves or rejects a month whose anomaly flags say ``ask``.

Between ``check_anomalies`` and ``publish`` in every family's task group (``include.flows.load_month``):

- no flag asks: the task succeeds at once and ``publish`` goes on. (It cannot skip instead:
  ``publish`` follows the setup ``stage`` directly, so its trigger rule must stay ``all_success``,
  which a skipped review would skip too.)
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


class ReviewAnomalies(ApprovalOperator):
    """Ask a person to approve or reject a staged month that a flag set to ``ask`` holds back.

    ``staged`` and ``anomalies`` are the XComs of the family's ``stage`` and ``check_anomalies``;
    ``destination`` the dotted path of the destination, which stores the review.
    """

    template_fields = (*ApprovalOperator.template_fields, "staged", "anomalies")
    ui_color = "#fefcbf"

    def __init__(
        self, *, destination: str, staged: XComArg | dict, anomalies: XComArg | list, **kwargs: Any
    ) -> None:
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
        self.anomalies = anomalies

    def execute(self, context: Context) -> Any:
        from airflow.sdk import Variable

        from include.checks.review import ReviewSettings, asking, request_text
        from include.observing.alerts import notify_review_requested

        taxi, month = self.staged["taxi"], self.staged["month"]
        if not asking(self.anomalies):
            self.log.info("No anomaly flag of %s %s asks for a review: publishing without one", taxi, month)
            return None
        settings = ReviewSettings.parse(
            Variable.get("anomaly_review_timeout", default=None),
            Variable.get("anomaly_review_default", default=None),
        )
        self.response_timeout = settings.timeout
        self.defaults = [settings.default_option]
        self.subject, self.body = request_text(taxi, month, self.anomalies, self._chart_link(), settings)
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
        review = review_record(event, self.anomalies, self._chart_link())
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
