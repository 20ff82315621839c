"""What every order store must do (``order_core.ports.OrderStore``): the cases, written once.

``tests/unit/test_order_store_contract_memory.py`` runs them against ``InMemoryOrderStore`` and
``tests/integration/test_order_store_contract_dynamodb.py`` against the DynamoDB adapter under moto: the
fake the unit tests trust cannot drift from the adapter production runs. Each test module provides a
``store`` fixture. Orders are moved only through the port's methods, as the services move them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from order_core.models.lifecycle import Phase
from order_core.models.order import LandedFile, OrderRecord, utcnow
from order_core.models.planet import OrderState
from order_core.ports import OrderStore

LEASE = timedelta(minutes=2)
SECRET_REQUEST = {"name": "n", "delivery": {"amazon_s3": {"aws_secret_access_key": "s3cr3t"}}}
REDACTED_REQUEST = {"name": "n", "delivery": {"amazon_s3": {"aws_secret_access_key": "<redacted>"}}}


def accepted(store: OrderStore, tenant: str = "acme") -> OrderRecord:
    record = OrderRecord(order_id=str(uuid.uuid4()), tenant=tenant, name="n", request=dict(SECRET_REQUEST))
    assert store.create(record)
    return record


def submitted(store: OrderStore, upstream_state: str = "queued") -> OrderRecord:
    record = accepted(store)
    assert store.claim_submission(record.order_id, lease=LEASE) is not None
    done = store.record_upstream_order(
        record.order_id, upstream_order_id="up-1", upstream_state=upstream_state, last_message="Submitted"
    )
    assert done is not None
    return done


def delivering(store: OrderStore) -> OrderRecord:
    record = submitted(store)
    polled = store.record_poll(record.order_id, upstream_state=OrderState.success, last_message="Landing")
    assert polled is not None and polled.phase is Phase.DELIVERING
    return polled


def finalized(store: OrderStore) -> OrderRecord:
    record = submitted(store)
    done = store.finalize(
        record.order_id, state=OrderState.cancelled, last_message="Cancel success", hints=[], at=utcnow()
    )
    assert done is not None
    return done


def test_store_create_existing_id_returns_false_and_keeps_the_first(store: OrderStore) -> None:
    record = accepted(store)

    assert not store.create(record.model_copy(update={"name": "other"}))
    current = store.get(record.order_id)
    assert current is not None and current.name == "n" and current.state is OrderState.queued


def test_store_claim_submission_accepted_moves_to_submitting_counting_the_attempt(store: OrderStore) -> None:
    record = accepted(store)

    claimed = store.claim_submission(record.order_id, lease=LEASE)

    assert claimed is not None and claimed.phase is Phase.SUBMITTING and claimed.submit_attempts == 1
    assert claimed.submit_started_at is not None and claimed.state is OrderState.queued


def test_store_claim_submission_while_another_holds_the_lease_is_refused(store: OrderStore) -> None:
    record = accepted(store)
    assert store.claim_submission(record.order_id, lease=LEASE) is not None

    assert store.claim_submission(record.order_id, lease=LEASE) is None


def test_store_claim_submission_after_release_counts_another_attempt_keeping_the_first_start(
    store: OrderStore,
) -> None:
    record = accepted(store)
    first = store.claim_submission(record.order_id, lease=LEASE)
    assert first is not None
    store.release_submission(record.order_id)

    again = store.claim_submission(record.order_id, lease=LEASE)

    assert again is not None and again.submit_attempts == 2
    assert again.submit_started_at == first.submit_started_at


def test_store_release_submission_of_an_unsent_attempt_does_not_count_it(store: OrderStore) -> None:
    record = accepted(store)
    first = store.claim_submission(record.order_id, lease=LEASE)
    assert first is not None
    store.release_submission(record.order_id, attempts=first.submit_attempts - 1)

    again = store.claim_submission(record.order_id, lease=LEASE)

    assert again is not None and again.submit_attempts == 1


def test_store_claim_submission_after_the_lease_ran_out_is_granted(store: OrderStore) -> None:
    record = accepted(store)
    assert store.claim_submission(record.order_id, lease=timedelta(seconds=-1)) is not None  # a dead attempt

    assert store.claim_submission(record.order_id, lease=LEASE) is not None


def test_store_claim_submission_of_order_cancelled_before_any_post_or_rejected_is_refused(
    store: OrderStore,
) -> None:
    cancelled, rejected = accepted(store), accepted(store)
    assert store.request_cancel(cancelled.order_id) is not None
    assert store.reject(rejected.order_id, ["bad"]) is not None

    assert store.claim_submission(cancelled.order_id, lease=LEASE) is None
    assert store.claim_submission(rejected.order_id, lease=LEASE) is None


def test_store_claim_submission_of_order_cancelled_during_a_post_waits_for_the_lease(
    store: OrderStore,
) -> None:
    record = accepted(store)
    assert store.claim_submission(record.order_id, lease=LEASE) is not None
    assert store.request_cancel(record.order_id) is not None

    held = store.claim_submission(record.order_id, lease=LEASE)
    store.release_submission(record.order_id)
    freed = store.claim_submission(record.order_id, lease=LEASE)

    assert held is None
    assert freed is not None and freed.cancel_requested and freed.submit_attempts == 2


def test_store_record_upstream_order_moves_submitting_to_submitted_with_the_redacted_request(
    store: OrderStore,
) -> None:
    record = accepted(store)
    store.claim_submission(record.order_id, lease=LEASE)

    done = store.record_upstream_order(
        record.order_id,
        upstream_order_id="up-1",
        upstream_state="queued",
        last_message="Submitted",
        request=REDACTED_REQUEST,
    )

    assert done is not None and done.phase is Phase.SUBMITTED and done.upstream_order_id == "up-1"
    assert done.request == REDACTED_REQUEST and done.submit_lease_until is None
    assert done.state is OrderState.queued and done.submitted_at is not None


def test_store_record_upstream_order_unless_submitting_is_refused(store: OrderStore) -> None:
    record = accepted(store)
    args = {"upstream_order_id": "up-1", "upstream_state": "queued", "last_message": "m"}

    assert store.record_upstream_order(record.order_id, **args) is None  # type: ignore[arg-type]
    assert store.record_upstream_order(submitted(store).order_id, **args) is None  # type: ignore[arg-type]


def test_store_request_cancel_before_planet_flags_it_once(store: OrderStore) -> None:
    record = accepted(store)

    first = store.request_cancel(record.order_id, REDACTED_REQUEST)

    assert first is not None and first.cancel_requested and first.request == REDACTED_REQUEST
    assert store.request_cancel(record.order_id) is None  # a second cancel finds it cancelled


def test_store_request_cancel_during_the_post_flags_the_submitting_order(store: OrderStore) -> None:
    record = accepted(store)
    store.claim_submission(record.order_id, lease=LEASE)

    flagged = store.request_cancel(record.order_id)

    assert flagged is not None and flagged.cancel_requested and flagged.phase is Phase.SUBMITTING


def test_store_request_cancel_once_planet_has_it_or_rejected_is_refused(store: OrderStore) -> None:
    rejected = accepted(store)
    store.reject(rejected.order_id, ["bad"])

    assert store.request_cancel(submitted(store).order_id) is None
    assert store.request_cancel(rejected.order_id) is None


def test_store_reject_before_planet_ends_accepted_and_rejected(store: OrderStore) -> None:
    record = accepted(store)
    store.claim_submission(record.order_id, lease=LEASE)

    rejected = store.reject(record.order_id, ["Planet refused the order"], REDACTED_REQUEST)

    assert rejected is not None and rejected.rejected and rejected.phase is Phase.ACCEPTED
    assert rejected.error_hints == ["Planet refused the order"] and rejected.request == REDACTED_REQUEST
    assert store.reject(submitted(store).order_id, ["late"]) is None


def test_store_forget_credentials_replaces_the_request_only(store: OrderStore) -> None:
    record = submitted(store)

    done = store.forget_credentials(record.order_id, REDACTED_REQUEST)

    assert done is not None and done.request == REDACTED_REQUEST and done.phase is Phase.SUBMITTED


def test_store_record_poll_follows_planet_state_into_delivering(store: OrderStore) -> None:
    record = submitted(store)

    queued = store.record_poll(record.order_id, upstream_state=OrderState.queued, last_message="Queued")
    running = store.record_poll(record.order_id, upstream_state=OrderState.running, error_hints=["slow"])
    success = store.record_poll(record.order_id, upstream_state=OrderState.success, last_message="Landing")

    assert queued is not None and queued.state is OrderState.queued and queued.last_message == "Queued"
    assert running is not None and running.state is OrderState.running and running.error_hints == ["slow"]
    assert running.last_message == "Queued"  # unchanged when not given
    assert success is not None and success.phase is Phase.DELIVERING and success.state is OrderState.running


def test_store_record_poll_never_takes_an_order_back_to_an_earlier_planet_state(store: OrderStore) -> None:
    # A sweep's list page read while the order ran, written after the order's own GET saw it delivered: the
    # landing reads the recorded state, so the stale report must not land.
    delivered = delivering(store)

    stale = store.record_poll(delivered.order_id, upstream_state=OrderState.running, own_poll=False)

    current = store.get(delivered.order_id)
    assert stale is None
    assert current is not None and current.upstream_state == "success" and current.phase is Phase.DELIVERING


def test_store_record_poll_of_a_running_order_refuses_queued_but_takes_a_final_state(
    store: OrderStore,
) -> None:
    record = submitted(store, upstream_state="running")

    assert store.record_poll(record.order_id, upstream_state=OrderState.queued) is None
    failed = store.record_poll(record.order_id, upstream_state=OrderState.failed)

    assert failed is not None and failed.upstream_state == "failed"


def test_store_record_poll_resets_the_unusable_count(store: OrderStore) -> None:
    record = submitted(store)
    counted = store.record_unusable_poll(record.order_id, 3)
    assert counted is not None and counted.unusable_polls == 3

    polled = store.record_poll(record.order_id, upstream_state=OrderState.queued)

    assert polled is not None and polled.unusable_polls == 0


def test_store_record_poll_of_order_not_at_planet_is_refused(store: OrderStore) -> None:
    assert store.record_poll(accepted(store).order_id, upstream_state=OrderState.running) is None
    assert store.record_poll(finalized(store).order_id, upstream_state=OrderState.running) is None
    assert store.record_unusable_poll(finalized(store).order_id, 1) is None


def test_store_record_upstream_cancel_keeps_a_submitted_order_queued_until_finalized(
    store: OrderStore,
) -> None:
    record = submitted(store)

    done = store.record_upstream_cancel(record.order_id, "cancelled")

    assert done is not None and done.upstream_state == "cancelled" and done.state is OrderState.queued
    assert done.last_message == "Cancel success"
    assert store.record_upstream_cancel(accepted(store).order_id, "cancelled") is None


def test_store_record_results_only_while_delivering(store: OrderStore) -> None:
    record = delivering(store)
    landed = LandedFile(path="a.tif", key="k/a.tif", size=3, md5="m", sha256="s")

    done = store.record_results(
        record.order_id, [landed], pending=["b.tif"], landed_bytes=3, last_message="Landed 1 files"
    )

    assert done is not None and done.results == [landed] and done.pending_results == ["b.tif"]
    assert done.landed_bytes == 3 and done.last_message == "Landed 1 files"
    assert store.record_results(submitted(store).order_id, [landed], pending=[], landed_bytes=3) is None


def test_store_claim_completion_event_is_granted_once_until_released(store: OrderStore) -> None:
    record = delivering(store)

    first = store.claim_completion_event(record.order_id, utcnow())
    second = store.claim_completion_event(record.order_id, utcnow())
    store.release_completion_event(record.order_id)
    after_release = store.claim_completion_event(record.order_id, utcnow())

    assert first is not None and first.event_published_at is not None
    assert second is None and after_release is not None


def test_store_finalize_records_the_terminal_state_once(store: OrderStore) -> None:
    record = delivering(store)
    store.record_results(record.order_id, [], pending=["late.tif"], landed_bytes=0)

    done = store.finalize(
        record.order_id, state=OrderState.success, last_message="Done", hints=[], at=utcnow()
    )
    again = store.finalize(record.order_id, state=OrderState.failed, last_message="x", hints=[], at=utcnow())

    assert done is not None and done.phase is Phase.FINALIZED and done.state is OrderState.success
    assert done.pending_results == [] and again is None
    current = store.get(record.order_id)
    assert current is not None and current.state is OrderState.success


def test_store_active_counts_follow_the_lifecycle(store: OrderStore) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    record = OrderRecord(order_id=str(uuid.uuid4()), tenant=tenant, name="n", request={})
    store.create(record)
    count = store.count_active  # type: ignore[attr-defined]
    assert (count("queued", tenant), count("running", tenant)) == (1, 0)

    store.claim_submission(record.order_id, lease=LEASE)
    store.record_upstream_order(
        record.order_id, upstream_order_id="u", upstream_state="running", last_message="m"
    )
    assert (count("queued", tenant), count("running", tenant)) == (0, 1)

    store.finalize(record.order_id, state=OrderState.failed, last_message="m", hints=[], at=utcnow())
    assert (count("queued", tenant), count("running", tenant)) == (0, 0)


def test_store_writes_to_a_missing_order_are_refused(store: OrderStore) -> None:
    missing = str(uuid.uuid4())

    assert store.claim_submission(missing, lease=LEASE) is None
    assert store.request_cancel(missing) is None
    assert store.reject(missing, ["x"]) is None
    assert store.record_poll(missing, upstream_state=OrderState.running) is None
    assert store.claim_completion_event(missing, utcnow()) is None
    assert store.finalize(missing, state=OrderState.failed, last_message="m", hints=[], at=utcnow()) is None
    assert store.get(missing) is None


# --- waiting for a change (services/wake.py) ---------------------------------------------------------------


def submitted_as(store: OrderStore, upstream_order_id: str, upstream_state: str = "queued") -> OrderRecord:
    record = accepted(store)
    assert store.claim_submission(record.order_id, lease=LEASE) is not None
    done = store.record_upstream_order(
        record.order_id,
        upstream_order_id=upstream_order_id,
        upstream_state=upstream_state,
        last_message="Submitted",
    )
    assert done is not None
    return done


def test_store_watch_stores_the_token_and_one_waker_takes_it(store: OrderStore) -> None:
    record = submitted(store)

    assert store.watch(record.order_id, "token-1") is False
    taken = [store.take_wake_token(record.order_id) for _ in range(2)]

    assert taken == ["token-1", None]


def test_store_watch_after_a_deferred_wake_reports_it_once(store: OrderStore) -> None:
    record = submitted(store)
    assert store.defer_wake(record.order_id)

    first = store.watch(record.order_id, "token-1")
    second = store.watch(record.order_id, "token-2")

    assert (first, second) == (True, False)
    assert store.take_wake_token(record.order_id) == "token-2"


def test_store_watch_or_defer_of_order_not_waiting_at_planet_is_refused(store: OrderStore) -> None:
    for record in (accepted(store), delivering(store), finalized(store)):
        assert store.watch(record.order_id, "token") is None
        assert not store.defer_wake(record.order_id)
        assert store.take_wake_token(record.order_id) is None
    assert store.watch("missing", "token") is None


def test_store_wake_while_submitting_is_kept_for_the_first_wait(store: OrderStore) -> None:
    # Planet's webhook for an order an ambiguous POST created, before the submitter found it.
    record = accepted(store)
    assert store.claim_submission(record.order_id, lease=LEASE) is not None

    assert store.defer_wake(record.order_id)
    store.record_upstream_order(
        record.order_id, upstream_order_id="up-1", upstream_state="queued", last_message="Submitted"
    )

    assert store.watch(record.order_id, "token-1") is True


def test_store_watch_of_an_order_planet_already_finished_ends_at_once(store: OrderStore) -> None:
    # Found by reconciliation after Planet finished it: no later change would ever wake the wait.
    record = submitted(store, upstream_state="success")

    assert store.watch(record.order_id, "token-1") is True


def test_store_followed_by_upstream_ids_maps_only_orders_being_followed(store: OrderStore) -> None:
    prefix = str(uuid.uuid4())
    waiting = submitted_as(store, f"{prefix}-a", "queued")
    delivered = submitted_as(store, f"{prefix}-b", "running")
    assert store.record_poll(delivered.order_id, upstream_state=OrderState.success) is not None

    found = store.followed_by_upstream_ids([f"{prefix}-a", f"{prefix}-b", f"{prefix}-unknown"])

    assert found == {f"{prefix}-a": (waiting.order_id, "queued")}


def test_store_record_poll_stamps_own_polls_only(store: OrderStore) -> None:
    record = submitted(store)

    swept = store.record_poll(record.order_id, upstream_state=OrderState.running, own_poll=False)
    own = store.record_poll(record.order_id, upstream_state=OrderState.running)

    assert swept is not None and swept.last_own_poll_at is None and swept.state is OrderState.running
    assert own is not None and own.last_own_poll_at is not None
