"""Disputes at the clearing house (拒付 / 申诉, SPEC §12.3): storage, the lapse sweep and the adjustment posting.

The state machine and deadlines are pure (`clearing/disputes.py`); this module loads a dispute, applies a step
and stores it, and posts the adjustment an accepted, lapsed or upheld dispute owes in the same database
transaction as the step that made it owed — exactly once: `dispute_adjustments` has one row per dispute, and
every step holds the dispute's settlement's advisory lock.

**Postings.** The adjustment is the mirror of a settlement's legs for the disputed amount, booked as kind
`dispute` in the first open clearing month from its commit (`first_open_month`, like a reversal after a close):
`treating/{T}/receivable/{I}` −a, `insured/{I}/payable/{T}` +a, `insured/{I}/prepayment_drawn` −a,
`insured/{I}/prepayment` +a. Its `dispute_adjustments` row moves that month's (I, T) cell of the gross matrix by
−a (trigger, migration 0016), so the month's netting, net positions and clearing see it. The claim row is not
touched: the patient's share (psn_pay) never changes.

**A lapse** (no answer within the answer window) is applied by `sweep`: at every dispute call (get, list, answer,
decide, raise) and before a month close, in a transaction of its own; the lapsed dispute's adjustment is posted
in the first open month of that moment.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
import structlog
from clearinghouse.v1 import clearing_house_pb2 as pb

from clearing import disputes
from clearing.dates import first_open_month
from clearing.disputes import Dispute, State, Step
from clearing.errors import PreconditionFailed
from clearing.ledger import mirror, settlement_postings
from services.clearinghouse import store
from services.common.ledger_sql import insert_transaction
from services.common.locks import lock_disputed_settlement

log = structlog.get_logger()

STATES = {State.RAISED: pb.DISPUTE_STATE_RAISED, State.ACCEPTED: pb.DISPUTE_STATE_ACCEPTED,
          State.APPEALED: pb.DISPUTE_STATE_APPEALED, State.UPHELD: pb.DISPUTE_STATE_UPHELD,
          State.REJECTED: pb.DISPUTE_STATE_REJECTED, State.LAPSED: pb.DISPUTE_STATE_LAPSED}
SWEEP_MAX = 1000  # lapses applied per sweep (bounded; the next call applies the rest)


def _step(row: asyncpg.Record, name: str) -> Step | None:
    if row[f"{name}_by"] is None:
        return None
    return Step(by=row[f"{name}_by"], at=row[f"{name}_at"], month=row[f"{name}_month"])


def from_row(row: asyncpg.Record) -> Dispute:
    return Dispute(
        dispute_key=str(row["dispute_id"]), settlement_id=str(row["settlement_id"]),
        insured_region=row["insured_region"], treating_region=row["treating_region"],
        hospital_code=row["hospital_code"], settlement_month=row["settlement_month"],
        fund_pay_fen=row["fund_pay_fen"], amount_fen=row["amount_fen"], rule_id=row["rule_id"], reason=row["reason"],
        raised=_step(row, "raised"), state=State(row["state"]), answered=_step(row, "answered"),
        appeal_text=row["appeal_text"], decided=_step(row, "decided"), lapsed_month=row["lapsed_month"],
        adjusted_month=row["adjusted_month"])


def _step_message(step: Step | None) -> pb.DisputeStep | None:
    if step is None:
        return None
    message = pb.DisputeStep(by=step.by, month=step.month)
    message.at.FromDatetime(step.at)
    return message


def message(dispute: Dispute) -> pb.Dispute:
    """The dispute as the RPCs answer it."""
    result = pb.Dispute(
        dispute_id=dispute.dispute_key, settlement_id=dispute.settlement_id, insured_region=dispute.insured_region,
        treating_region=dispute.treating_region, hospital_code=dispute.hospital_code,
        settlement_month=dispute.settlement_month, fund_pay_fen=dispute.fund_pay_fen, amount_fen=dispute.amount_fen,
        rule_id=dispute.rule_id, reason=dispute.reason, state=STATES[dispute.state], appeal_text=dispute.appeal_text,
        answer_deadline=disputes.answer_deadline(dispute.raised.month), lapsed_month=dispute.lapsed_month or "",
        adjusted_month=dispute.adjusted_month or "")
    for name, step in (("raised", dispute.raised), ("answered", dispute.answered), ("decided", dispute.decided)):
        if step is not None:
            getattr(result, name).CopyFrom(_step_message(step))
    return result


async def find(conn: asyncpg.Connection, dispute_id: str) -> Dispute | None:
    row = await conn.fetchrow("SELECT * FROM disputes WHERE dispute_id = $1", UUID(dispute_id))
    return None if row is None else from_row(row)


async def of_settlement(conn: asyncpg.Connection, settlement_id: str) -> list[Dispute]:
    rows = await conn.fetch("SELECT * FROM disputes WHERE settlement_id = $1 ORDER BY raised_order",
                            UUID(settlement_id))
    return [from_row(row) for row in rows]


async def listed(conn: asyncpg.Connection, region: str | None, settlement_month: str | None) -> list[Dispute]:
    rows = await conn.fetch(
        "SELECT * FROM disputes WHERE ($1::text IS NULL OR insured_region = $1 OR treating_region = $1) "
        "AND ($2::text IS NULL OR settlement_month = $2) ORDER BY raised_order", region, settlement_month)
    return [from_row(row) for row in rows]


async def insert(conn: asyncpg.Connection, dispute: Dispute) -> None:
    raised = dispute.raised
    await conn.execute(
        "INSERT INTO disputes (insured_region, dispute_id, settlement_id, treating_region, hospital_code, "
        "settlement_month, fund_pay_fen, amount_fen, rule_id, reason, state, raised_by, raised_at, raised_month) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        dispute.insured_region, UUID(dispute.dispute_key), UUID(dispute.settlement_id), dispute.treating_region,
        dispute.hospital_code, dispute.settlement_month, dispute.fund_pay_fen, dispute.amount_fen, dispute.rule_id,
        dispute.reason, dispute.state.value, raised.by, raised.at, raised.month)


async def save(conn: asyncpg.Connection, before: Dispute, after: Dispute) -> None:
    """Store a step's result; posts the adjustment when the step made it owed. The caller holds the settlement's
    lock, so `before` is what is stored."""
    if after is before:
        return
    answered, decided = after.answered, after.decided
    status = await conn.execute(
        "UPDATE disputes SET state = $3, answered_by = $4, answered_at = $5, answered_month = $6, appeal_text = $7, "
        "decided_by = $8, decided_at = $9, decided_month = $10, lapsed_month = $11 "
        "WHERE insured_region = $1 AND dispute_id = $2 AND state = $12",
        after.insured_region, UUID(after.dispute_key), after.state.value,
        answered and answered.by, answered and answered.at, answered and answered.month, after.appeal_text,
        decided and decided.by, decided and decided.at, decided and decided.month, after.lapsed_month,
        before.state.value)
    assert status == "UPDATE 1", "a dispute moves from the state it was loaded in"


async def post_adjustment(conn: asyncpg.Connection, partitions, dispute: Dispute, now: datetime,  # noqa: ANN001
                          month_now: str) -> Dispute:
    """Post the owed adjustment in the first open month from `month_now`; returns the dispute marked adjusted.
    A settlement cancelled or reversed since the raise gave its whole fund pay back already: refused."""
    assert dispute.adjustment_owed
    claim = await store.find_claim(conn, dispute.settlement_id)
    if claim["status"] != "settled":
        raise PreconditionFailed("dispute", f"the settlement is {claim['status']} since the dispute was raised: "
                                            "its whole fund pay was given back, there is nothing to adjust")
    if await store.find_cancel_intent(conn, dispute.settlement_id) is not None:
        # The insured agency may have cancelled already (the clearing house stopped before recording it): the
        # cancel's completion will give the whole fund pay back, so the amount must not go back now as well.
        raise PreconditionFailed("dispute", "a cancel (撤销) of the settlement was sent to the insured agency and "
                                            "has not completed here: retry the cancel or reconcile its settlement "
                                            "day, then the dispute")
    await store.lock_aggregates_for_posting(conn)  # the lock order of a settlement's post
    month = first_open_month(month_now, await store.closed_months_from(conn, month_now))
    await partitions.ensure_within(conn, month)
    postings = mirror(settlement_postings(dispute.treating_region, dispute.insured_region, dispute.amount_fen))
    tx_id = await insert_transaction(
        conn, {"settlement_id": UUID(dispute.settlement_id), "kind": "dispute", "clearing_month": month,
               "insured_region": dispute.insured_region}, postings, store.LEG_COLUMNS)
    await conn.execute(
        "INSERT INTO dispute_adjustments (insured_region, dispute_id, settlement_id, treating_region, hospital_code, "
        "month, amount_fen, tx_id, posted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        dispute.insured_region, UUID(dispute.dispute_key), UUID(dispute.settlement_id), dispute.treating_region,
        dispute.hospital_code, month, dispute.amount_fen, tx_id, now)
    status = await conn.execute(
        "UPDATE disputes SET adjusted_month = $3 WHERE insured_region = $1 AND dispute_id = $2 "
        "AND adjusted_month IS NULL", dispute.insured_region, UUID(dispute.dispute_key), month)
    assert status == "UPDATE 1", "an adjustment is posted once"
    log.info("dispute_adjusted", dispute_id=dispute.dispute_key, month=month, amount_fen=dispute.amount_fen,
             insured_region=dispute.insured_region, treating_region=dispute.treating_region)
    return disputes.mark_adjusted(dispute, month)


async def store_step(conn: asyncpg.Connection, partitions, before: Dispute, after: Dispute, now: datetime,  # noqa: ANN001
                     month_now: str) -> Dispute:
    """Save a step's result and post the adjustment it made owed, in the caller's transaction."""
    await save(conn, before, after)
    if after.adjustment_owed:
        after = await post_adjustment(conn, partitions, after, now, month_now)
    return after


def due_lapse_month_before(month_now: str) -> str:
    """A dispute raised before this month has lapsed by `month_now` if still unanswered."""
    return disputes.add_months(month_now, -disputes.ANSWER_WINDOW_MONTHS)


async def sweep(pool, partitions, now: datetime, month_now: str) -> int:  # noqa: ANN001
    """Apply every lapse that is due (and post its adjustment), each in a transaction of its own; returns how many.
    A dispute whose settlement was undone since is left raised (logged): nothing is owed on it."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT dispute_id, settlement_id FROM disputes WHERE (state = 'raised' AND raised_month < $1) "
            "OR (state IN ('accepted', 'lapsed', 'upheld') AND adjusted_month IS NULL) "
            "ORDER BY raised_order LIMIT $2", due_lapse_month_before(month_now), SWEEP_MAX)
        applied = 0
        for row in rows:
            try:
                async with conn.transaction(isolation="read_committed"):
                    await lock_disputed_settlement(conn, str(row["settlement_id"]))
                    before = await find(conn, str(row["dispute_id"]))
                    after = disputes.lapse(before, month_now)
                    if after is not before or after.adjustment_owed:
                        await store_step(conn, partitions, before, after, now, month_now)
                        applied += 1
            except PreconditionFailed as error:
                log.warning("dispute_lapse_not_applied", dispute_id=str(row["dispute_id"]), reason=error.message)
    return applied
