"""No order is ever stranded: restart every non-terminal order that nothing is moving along.

An order is stranded when it is not terminal and no workflow execution of it is running: the execution
failed, was stopped, or was lost (a local restart loses every execution), or the intake message that would
have submitted it is gone. The reconciler finds them through the sparse ``active`` index and hands each back
to the path that owns its phase, so the existing exactly-once guards still decide everything:

- ``accepted`` (never sent) or ``submitting`` (a POST may have reached Planet): an accepted-order message on
  the intake queue. The submit path claims the order with a conditional write, and from ``submitting`` it
  first looks for the order's marker at Planet, so it never POSTs twice.
- ``submitted`` (polling), ``delivering`` (landing, or finalizing): the workflow again, under the next
  unused execution name (``<id>-r<n>``). Polling is idempotent, landing skips verified files, and Finalize
  publishes the one event behind a conditional write.

Only orders untouched for ``min_age`` are repaired, so a submit retry waiting in the queue or a workflow
started a moment ago is not doubled (zero locally at start-up, when nothing else runs yet).

Each run also takes a paced step of the list-keys backfill (``backfill_list_keys``): orders written before
the list indexes existed lack their keys and are invisible to ``?state=``, ``?name=`` and ``sort_by=name``.
A run reads at most ``BACKFILL_ITEMS_PER_RUN`` items from where the last one stopped, until one pass over
the table is done; a failing step is logged and retried by the next run, never failing the reconcile.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from order_core.models.order import AcceptedOrderMessage, OrderRecord, Phase, WorkflowInput, utcnow
from order_core.observability import bind_order, logger

if TYPE_CHECKING:
    from order_core.adapters.messaging import IntakeQueue, WorkflowExecutions
    from order_core.ports import OrderStore


#: Items of the table one reconcile run reads for the backfill (in Scan pages of ``BACKFILL_PAGE``): at
#: one run every 5 minutes, 100,000 old orders take under two hours, and no run reads much.
BACKFILL_ITEMS_PER_RUN = 5000
BACKFILL_PAGE = 500


@dataclass(frozen=True)
class BackfillProgress:
    """One backfill step: items read, orders given their list keys, and whether the pass is complete."""

    scanned: int
    updated: int
    done: bool


class ListKeysBackfill(Protocol):
    def backfill_list_keys(self, *, max_items: int) -> BackfillProgress: ...


def repair_phase(record: OrderRecord) -> str:
    """The phase an order was stranded in, as the ``OrdersReconciled`` metric's ``phase`` dimension."""
    if record.phase == Phase.SUBMITTED:
        return "polling"
    if record.phase == Phase.DELIVERING:
        return "finalizing" if record.event_published_at is not None else "landing"
    return record.phase.value  # accepted, submitting


@dataclass(frozen=True)
class Repair:
    order_id: str
    phase: str
    action: str


@dataclass
class ReconcileReport:
    examined: int = 0
    repairs: list[Repair] = field(default_factory=list)
    backfilled: int = 0  # orders given their list-index keys by this run

    @property
    def by_phase(self) -> dict[str, int]:
        return dict(Counter(repair.phase for repair in self.repairs))

    def summary(self) -> str:
        if not self.repairs:
            return f"reconciled 0 orders ({self.examined} active checked)"
        phases = ", ".join(f"{count} {phase}" for phase, count in sorted(self.by_phase.items()))
        return f"reconciled {len(self.repairs)} orders: {phases} ({self.examined} active checked)"


class ReconcileService:
    def __init__(
        self,
        repo: OrderStore,
        executions: WorkflowExecutions,
        intake: IntakeQueue,
        *,
        min_age: timedelta = timedelta(minutes=30),
        clock: Callable[[], datetime] = utcnow,
        backfill: ListKeysBackfill | None = None,
    ) -> None:
        self._repo = repo
        self._backfill = backfill
        self._executions = executions
        self._intake = intake
        self._min_age = min_age
        self._clock = clock

    def run(self) -> ReconcileReport:
        report = ReconcileReport()
        running = self._executions.running_order_ids()
        for page in self._repo.active_order_ids():
            for order_id in page:
                report.examined += 1
                if order_id in running:
                    continue
                repair = self._repair(order_id)
                if repair is not None:
                    report.repairs.append(repair)
        self._publish(report)
        logger.remove_keys(["order_id", "tenant"])
        report.backfilled = self._backfill_step()
        extra = {"reconciled": report.by_phase, "examined": report.examined, "backfilled": report.backfilled}
        logger.info(report.summary(), extra=extra)
        return report

    def _backfill_step(self) -> int:
        """Give old orders their list keys, reading at most ``BACKFILL_ITEMS_PER_RUN`` items; how many."""
        if self._backfill is None:
            return 0
        updated = scanned = 0
        try:
            while scanned < BACKFILL_ITEMS_PER_RUN:
                step = self._backfill.backfill_list_keys(
                    max_items=min(BACKFILL_PAGE, BACKFILL_ITEMS_PER_RUN - scanned)
                )
                updated, scanned = updated + step.updated, scanned + max(step.scanned, 1)
                if step.done:
                    break
        except Exception:  # the next run goes on from the saved cursor; repairs matter more
            logger.exception("list-keys backfill step failed; the next run retries it")
        return updated

    def _repair(self, order_id: str) -> Repair | None:
        record = self._repo.get(order_id)
        if record is None or record.phase == Phase.FINALIZED:
            return None
        if self._clock() - record.last_modified < self._min_age:
            return None  # something may be moving it right now
        bind_order(record.order_id, record.tenant)
        phase = repair_phase(record)
        if record.phase in (Phase.ACCEPTED, Phase.SUBMITTING) and not (
            record.rejected or record.cancel_requested
        ):
            self._intake.send_accepted(AcceptedOrderMessage(order_id=record.order_id, tenant=record.tenant))
            action = "sent to the submit path again"
        else:
            started = self._executions.restart(
                WorkflowInput(
                    order_id=record.order_id,
                    tenant=record.tenant,
                    submitted=record.upstream_order_id is not None,
                )
            )
            if started is None:
                return None  # an execution is running after all
            action = f"workflow started as {started}"
        logger.warning("stranded order restarted", extra={"phase": phase, "action": action})
        return Repair(order_id=record.order_id, phase=phase, action=action)

    @staticmethod
    def _publish(report: ReconcileReport) -> None:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        for phase, count in sorted(report.by_phase.items()):
            with single_metric(name="OrdersReconciled", unit=MetricUnit.Count, value=count) as metric:
                metric.add_dimension(name="phase", value=phase)
