"""Disputes between regions over RPCs (SPEC §12.3, issue 12 item 5), on a stack of its own whose clock lives
through the months: raise, accept, appeal and decide, a lapse, the deadlines, who may do what, and the
adjustment — a balanced `dispute` transaction in the first open clearing month, in that month's gross matrix —
posted exactly once while the patient's share and the settled claim stay as they were."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import grpc
import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import clearing_house_pb2_grpc as ch_grpc
from clearinghouse.v1 import treating_agency_pb2 as ta

from services.clearinghouse import audit
from services.common.smart_audit import generated_knowledge
from services.security.identity import AGENCY, Identity
from services.stack.config import StackConfig

CLI = Path(sys.executable).parent / "clearing-admin"


def write_stack_file(stack, path: Path) -> Path:  # noqa: ANN001 - the module's in-process stack
    """The stack's configuration file, as `clearing-admin stack up` writes it (as tests/integration/conftest.py's,
    which a test module cannot import reliably when several conftest directories are collected)."""
    StackConfig(base_dsn=stack.config.base_dsn, database_prefix=stack.config.database_prefix,
                clearing_house_port=stack.clearing_house.port, his_port=stack.his.port,
                region_ports={region: running.port for region, running in stack.regions.items()},
                certs_dir=str(stack.certs_dir)).save(path)
    return path


async def clearing_admin(*arguments: str) -> tuple[int, str, str]:
    """The CLI as a subprocess while this process's event loop serves the stack: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(str(CLI), *arguments, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE,
                                                   env={**os.environ, "COLUMNS": "200"})
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=300)
    return process.returncode, stdout.decode(), stderr.decode()

TREATING, INSURED, OTHER = "440100", "460100", "530100"
HOSPITAL = "H44010000001"
JUNE, JULY, SEPTEMBER = "2026-06", "2026-07", "2026-09"


def as_agency(kit, region: str):  # noqa: ANN001, ANN201
    return kit.stack.stub_as(Identity(AGENCY, region), ch_grpc.ClearingHouseServiceStub, kit.stack.clearing_address)


def raise_request(settlement_id: str, amount_fen: int, key: str | None = None, rule_id: str = "AUD-DAYQTY",
                  reason: str = "", region: str = INSURED) -> ch.RaiseDisputeRequest:
    return ch.RaiseDisputeRequest(request_id=key or str(uuid.uuid4()), settlement_id=settlement_id,
                                  amount_fen=amount_fen, rule_id=rule_id, reason=reason, insured_region=region)


@pytest.fixture(scope="module")
async def settled(own_kit, timeline) -> list[tuple[str, int, int]]:
    """Three stays of INSURED's members at a TREATING hospital, settled in June: (id, fund pay, psn pay)."""
    timeline.at("2026-06-20")
    code = own_kit.plain_codes(TREATING)[3]
    result = []
    for _ in range(3):
        member = await own_kit.new_member(INSURED)
        lines = [own_kit.bill_line("1", code, "10", 500_000, "2026-06-11")]
        settlement = await own_kit.discharge(HOSPITAL, member, lines, "2026-06-10", "2026-06-15")
        split = settlement.adjudication.split
        assert split.fund_pay_fen > 10_000
        result.append((settlement.settlement_id, split.fund_pay_fen, split.psn_pay_fen))
    return result


async def claim_row(kit, settlement_id: str):  # noqa: ANN001, ANN201
    return await (await kit.db("clearinghouse")).fetchrow(
        "SELECT status, fund_pay_fen, psn_pay_fen, total_fen, response FROM claims WHERE settlement_id = $1",
        uuid.UUID(settlement_id))


async def cell(kit, month: str) -> tuple[int, int]:  # noqa: ANN001
    row = await (await kit.db("clearinghouse")).fetchrow(
        "SELECT fund_pay_fen, adjustments FROM clearing_aggregates WHERE clearing_month = $1 AND insured_region = $2 "
        "AND treating_region = $3", month, INSURED, TREATING)
    return (row["fund_pay_fen"], row["adjustments"]) if row else (0, 0)


async def test_raise_and_accept_post_the_adjustment_once_and_leave_the_patients_share(own_kit, settled):
    settlement_id, fund_pay_fen, psn_pay_fen = settled[0]
    before = await claim_row(own_kit, settlement_id)
    june_before = await cell(own_kit, JUNE)
    key = str(uuid.uuid4())
    raised = (await as_agency(own_kit, INSURED).RaiseDispute(raise_request(settlement_id, 1234, key))).dispute
    assert raised.state == ch.DISPUTE_STATE_RAISED and raised.raised.by == f"agency/{INSURED}"
    assert (raised.treating_region, raised.hospital_code, raised.settlement_month) == (TREATING, HOSPITAL, JUNE)
    assert raised.answer_deadline == JULY and raised.fund_pay_fen == fund_pay_fen
    again = (await as_agency(own_kit, INSURED).RaiseDispute(raise_request(settlement_id, 1234, key))).dispute
    assert again == raised  # the same content returns the first dispute
    error = await own_kit.refusal(as_agency(own_kit, INSURED).RaiseDispute(raise_request(settlement_id, 1235, key)))
    own_kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="amount_fen")

    accepted = (await as_agency(own_kit, TREATING).AnswerDispute(ch.AnswerDisputeRequest(
        request_id=str(uuid.uuid4()), dispute_id=key, answer=ch.DISPUTE_ANSWER_ACCEPT))).dispute
    assert accepted.state == ch.DISPUTE_STATE_ACCEPTED and accepted.answered.by == f"agency/{TREATING}"
    assert accepted.adjusted_month == JUNE  # June is open: the adjustment counts in it
    repeat = (await as_agency(own_kit, TREATING).AnswerDispute(ch.AnswerDisputeRequest(
        request_id=str(uuid.uuid4()), dispute_id=key, answer=ch.DISPUTE_ANSWER_ACCEPT))).dispute
    assert repeat == accepted
    error = await own_kit.refusal(as_agency(own_kit, TREATING).AnswerDispute(ch.AnswerDisputeRequest(
        request_id=str(uuid.uuid4()), dispute_id=key, answer=ch.DISPUTE_ANSWER_APPEAL, appeal_text="changed our mind")))
    own_kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="answer")

    ledger = await own_kit.ledger(settlement_id)
    assert ledger["dispute"] == {f"treating/{TREATING}/receivable/{INSURED}": -1234,
                                 f"insured/{INSURED}/payable/{TREATING}": 1234,
                                 f"insured/{INSURED}/prepayment_drawn": -1234,
                                 f"insured/{INSURED}/prepayment": 1234}
    assert await cell(own_kit, JUNE) == (june_before[0] - 1234, june_before[1] + 1)
    after = await claim_row(own_kit, settlement_id)
    assert dict(after) == dict(before)  # the settled claim is never updated: psn_pay, fund split, answer
    assert after["psn_pay_fen"] == psn_pay_fen

    # The treating agency deducts it from the hospital's payout (扣款) when it next reconciles or closes payouts.
    treating_before = await (await own_kit.db(f"treating_{TREATING}")).fetchrow(
        "SELECT fund_pay_fen, psn_pay_fen, status FROM settlements WHERE settlement_id = $1", uuid.UUID(settlement_id))
    listed = await own_kit.treating(TREATING).ListPayouts(ta.ListPayoutsRequest(month=JUNE))
    assert all(item.deductions == 0 for item in listed.payouts)  # a list is a read: nothing booked yet
    await own_kit.treating(TREATING).Reconcile(ta.ReconcileRequest(day="2026-06-20"))
    payouts = await own_kit.treating(TREATING).ListPayouts(ta.ListPayoutsRequest(month=JUNE))
    payout = next(item for item in payouts.payouts if item.hospital_code == HOSPITAL)
    assert (payout.deductions, payout.deducted_fen) == (1, 1234)
    assert payout.fund_pay_fen == sum(fund for _, fund, _ in settled) - 1234  # this hospital's June stays
    assert (await own_kit.ledger(settlement_id, f"treating_{TREATING}"))["dispute"] == {
        f"hospital/{HOSPITAL}/receivable": -1234, f"insured/{INSURED}/payable/{TREATING}": 1234}
    await own_kit.treating(TREATING).Reconcile(ta.ReconcileRequest(day="2026-06-20"))
    again = await own_kit.treating(TREATING).ListPayouts(ta.ListPayoutsRequest(month=JUNE))
    assert again == payouts  # booked once
    treating_after = await (await own_kit.db(f"treating_{TREATING}")).fetchrow(
        "SELECT fund_pay_fen, psn_pay_fen, status FROM settlements WHERE settlement_id = $1", uuid.UUID(settlement_id))
    assert dict(treating_after) == dict(treating_before) and treating_after["psn_pay_fen"] == psn_pay_fen


async def test_the_amount_is_capped_by_what_earlier_disputes_left_of_the_fund_pay(own_kit, settled):
    settlement_id, fund_pay_fen, _ = settled[0]  # 1234 fen of it accepted above
    error = await own_kit.refusal(as_agency(own_kit, INSURED).RaiseDispute(
        raise_request(settlement_id, fund_pay_fen - 1233)))
    own_kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="amount_fen")
    error = await own_kit.refusal(as_agency(own_kit, INSURED).RaiseDispute(raise_request(settlement_id, 0)))
    own_kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="amount_fen")
    error = await own_kit.refusal(as_agency(own_kit, INSURED).RaiseDispute(
        raise_request(settlement_id, 10, rule_id="", reason="")))
    own_kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="reason")
    error = await own_kit.refusal(as_agency(own_kit, INSURED).RaiseDispute(
        raise_request(settlement_id, 10, rule_id="AUD-FOO")))
    own_kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="rule_id")


async def test_each_party_acts_and_reads_only_as_itself(own_kit, settled):
    settlement_id = settled[1][0]
    error = await own_kit.refusal(as_agency(own_kit, TREATING).RaiseDispute(raise_request(settlement_id, 10)))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    error = await own_kit.refusal(as_agency(own_kit, OTHER).RaiseDispute(
        raise_request(settlement_id, 10, region=OTHER)))
    own_kit.assert_refused(error, grpc.StatusCode.NOT_FOUND, resource=settlement_id)
    key = str(uuid.uuid4())
    await as_agency(own_kit, INSURED).RaiseDispute(raise_request(settlement_id, 500, key, rule_id="",
                                                                 reason="重复收费 by hand"))
    for region, rpc in ((INSURED, "AnswerDispute"), (OTHER, "AnswerDispute"), (OTHER, "GetDispute")):
        request = (ch.AnswerDisputeRequest(request_id=str(uuid.uuid4()), dispute_id=key,
                                           answer=ch.DISPUTE_ANSWER_ACCEPT) if rpc == "AnswerDispute"
                   else ch.GetDisputeRequest(dispute_id=key))
        error = await own_kit.refusal(getattr(as_agency(own_kit, region), rpc)(request))
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED, (region, rpc)
    error = await own_kit.refusal(as_agency(own_kit, INSURED).DecideDispute(ch.DecideDisputeRequest(
        request_id=str(uuid.uuid4()), dispute_id=key, decision=ch.DISPUTE_DECISION_UPHELD)))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    for region in (INSURED, TREATING):
        listed = (await as_agency(own_kit, region).ListDisputes(ch.ListDisputesRequest(region=region))).disputes
        assert key in [item.dispute_id for item in listed]
    assert not (await as_agency(own_kit, OTHER).ListDisputes(ch.ListDisputesRequest(region=OTHER))).disputes
    error = await own_kit.refusal(as_agency(own_kit, OTHER).ListDisputes(ch.ListDisputesRequest(region=INSURED)))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_an_appeal_upheld_after_the_close_adjusts_the_first_open_month(own_kit, settled, timeline):
    settlement_id = settled[2][0]
    key = str(uuid.uuid4())
    await as_agency(own_kit, INSURED).RaiseDispute(raise_request(settlement_id, 2000, key, rule_id="AUD-EXCL"))
    appealed = (await as_agency(own_kit, TREATING).AnswerDispute(ch.AnswerDisputeRequest(
        request_id=str(uuid.uuid4()), dispute_id=key, answer=ch.DISPUTE_ANSWER_APPEAL,
        appeal_text="两种护理不在同一天"))).dispute
    assert appealed.state == ch.DISPUTE_STATE_APPEALED and not appealed.adjusted_month
    timeline.at("2026-07-03")
    closing = (await own_kit.clearing().CloseMonth(ch.CloseMonthRequest(request_id=own_kit.rid(), month=JUNE))).closing
    june = next(item for item in closing.cells if (item.insured_region, item.treating_region) == (INSURED, TREATING))
    assert june.adjustments == 1  # the accepted dispute of the first test, not the appealed one
    upheld = (await own_kit.clearing().DecideDispute(ch.DecideDisputeRequest(
        request_id=str(uuid.uuid4()), dispute_id=key, decision=ch.DISPUTE_DECISION_UPHELD))).dispute
    assert upheld.state == ch.DISPUTE_STATE_UPHELD and upheld.decided.by == "operator/admin"
    assert upheld.adjusted_month == JULY  # June is closed: the first open month
    assert await cell(own_kit, JULY) == (-2000, 1)
    again = (await own_kit.clearing().DecideDispute(ch.DecideDisputeRequest(
        request_id=str(uuid.uuid4()), dispute_id=key, decision=ch.DISPUTE_DECISION_UPHELD))).dispute
    assert again == upheld
    error = await own_kit.refusal(own_kit.clearing().DecideDispute(ch.DecideDisputeRequest(
        request_id=str(uuid.uuid4()), dispute_id=key, decision=ch.DISPUTE_DECISION_REJECTED)))
    own_kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="decision")
    assert (await own_kit.clearing().GetMonthClosing(ch.GetMonthClosingRequest(month=JUNE))).closing == closing

    # Both regions' June statements show the accepted dispute's adjustment and every dispute with a June step.
    june_position = {item.region: item.net_fen for item in closing.positions}
    for region, adjusted_field in ((INSURED, "adjusted_by_fen"), (TREATING, "adjusted_to_fen")):
        items = [item async for item in own_kit.clearing().StreamStatement(
            ch.StreamStatementRequest(region=region, month=JUNE))]
        summary = items[0].summary
        assert getattr(summary, adjusted_field) == 1234 and summary.net_fen == june_position[region]
        entries = [item.entry for item in items if item.HasField("entry") and item.entry.kind == "dispute"]
        assert [(entry.fund_pay_fen, entry.psn_pay_fen) for entry in entries] == [(1234, 0)]
        listed = [item.dispute for item in items if item.HasField("dispute")]
        assert key in [item.dispute_id for item in listed] and len(listed) == 3  # accepted, by hand, appealed


async def test_no_answer_in_time_lapses_into_an_adjustment_and_a_late_raise_is_refused(own_kit, settled, timeline):
    settlement_id = settled[1][0]  # 500 fen raised by hand in June, never answered
    listed = (await own_kit.clearing().ListDisputes(ch.ListDisputesRequest(region=INSURED))).disputes
    by_hand = next(item for item in listed if item.settlement_id == settlement_id)
    assert by_hand.state == ch.DISPUTE_STATE_RAISED  # July is still within its answer window
    timeline.at("2026-08-02")
    got = (await as_agency(own_kit, INSURED).GetDispute(ch.GetDisputeRequest(dispute_id=by_hand.dispute_id))).dispute
    assert got.state == ch.DISPUTE_STATE_LAPSED and got.lapsed_month == "2026-08" and got.adjusted_month == "2026-08"
    assert not got.HasField("answered")
    error = await own_kit.refusal(as_agency(own_kit, TREATING).AnswerDispute(ch.AnswerDisputeRequest(
        request_id=str(uuid.uuid4()), dispute_id=by_hand.dispute_id, answer=ch.DISPUTE_ANSWER_APPEAL,
        appeal_text="too late")))
    own_kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="dispute")
    assert (await own_kit.ledger(settlement_id))["dispute"][f"treating/{TREATING}/receivable/{INSURED}"] == -500
    # Reconciliation (对账) with the clearing house finds the adjustments not yet deducted and books them, once.
    pair = f"treating_agency:{TREATING}<->clearing_house:disputes"
    answer = await own_kit.treating(TREATING).Reconcile(ta.ReconcileRequest(day="2026-08-01"))
    report = next(item for item in answer.reports if item.pair == pair)
    assert not report.totals_agreed
    assert {(item.key, item.action, item.repaired) for item in report.repairs} >= {
        (by_hand.dispute_id, "book_deduction", True)}
    again = await own_kit.treating(TREATING).Reconcile(ta.ReconcileRequest(day="2026-08-01"))
    report = next(item for item in again.reports if item.pair == pair)
    assert report.totals_agreed and not report.repairs
    assert report.upstream_totals[0].fund_pay_fen == report.downstream_totals[0].fund_pay_fen == 1234 + 2000 + 500
    await as_agency(own_kit, INSURED).RaiseDispute(raise_request(settlement_id, 7))  # within June + 3 months
    timeline.at("2026-10-01")  # after 2026-09, the last month a June settlement may be disputed in
    error = await own_kit.refusal(as_agency(own_kit, INSURED).RaiseDispute(raise_request(settlement_id, 7)))
    own_kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="settlement_id")


async def test_a_disputed_settlement_is_not_cancelled(own_kit, settled):
    settlement_id = settled[2][0]  # its dispute was upheld
    error = await own_kit.refusal(own_kit.treating(TREATING).Cancel(ta.CancelRequest(
        request_id=own_kit.rid(), settlement_id=settlement_id, reason="re-bill")))
    own_kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="settlement_id")
    assert "disputed" in error.details()
    assert (await claim_row(own_kit, settlement_id))["status"] == "settled"


async def test_the_ledger_aggregates_and_disputes_agree(own_kit, settled):
    connection = await own_kit.db("clearinghouse")
    assert await audit.unbalanced_transactions(connection) == []
    assert await audit.balance_mismatches(connection) == []
    assert await audit.aggregate_mismatches(connection) == []
    assert await audit.dispute_mismatches(connection) == []
    # accepted, upheld, lapsed in August, and the 7 fen raised in August lapsed in October
    assert await connection.fetchval("SELECT count(*) FROM dispute_adjustments") == 4
    # the treating agency books every one of them once, and its totals agree with the clearing house's
    await own_kit.treating(TREATING).Reconcile(ta.ReconcileRequest(day="2026-10-01"))
    adjusted = {str(row["dispute_id"]): row["amount_fen"] for row in await connection.fetch(
        "SELECT dispute_id, amount_fen FROM dispute_adjustments WHERE treating_region = $1", TREATING)}
    treating = await own_kit.db(f"treating_{TREATING}")
    deducted = {str(row["dispute_id"]): row["amount_fen"] for row in await treating.fetch(
        "SELECT dispute_id, amount_fen FROM dispute_deductions")}
    assert deducted == adjusted
    receivable = await treating.fetchval(
        "SELECT sum(p.amount_fen) FROM ledger_postings p JOIN ledger_transactions t USING (tx_id) "
        "WHERE t.kind = 'dispute' AND p.account LIKE 'hospital/%'")
    assert receivable == -sum(adjusted.values())


def nursing_code(kit) -> tuple[str, int]:  # noqa: ANN001
    """A plain TREATING item whose knowledge-base facts are only `max_qty_per_day = 1` (a nursing grade or a
    limited test): (local code, unit price)."""
    knowledge = generated_knowledge()
    for code, versions in sorted(kit.versions_by_code(TREATING).items()):
        row = versions[0]
        facts = knowledge.facts(row["national_code"]) if row["national_code"] else None
        if len(versions) == 1 and facts is not None and facts.max_qty_per_day_e4 == 10_000 and not facts.sex \
                and facts.min_age is None and facts.max_age is None and facts.min_hospital_level is None \
                and not facts.bed_day and row["grade"] == "A" and not row["restriction"].strip() \
                and not row["price_cap_fen"] and row["valid_from"] <= "2026-01-01" and not row["valid_to"]:
            return code, 2_000
    raise AssertionError("no item limited to one a day in the catalogue")


async def test_the_monthly_audit_raises_a_dispute_per_finding_once_and_the_cli_answers_it(own_kit, tmp_path):
    """事后 at the insured agency (`clearing-admin audit month --raise`), then the dispute commands."""
    code, price = nursing_code(own_kit)
    member = await own_kit.new_member(INSURED)
    lines = [own_kit.bill_line("1", own_kit.plain_codes(TREATING)[3], "10", 500_000, "2026-09-21"),
             own_kit.bill_line("2", code, "3", price, "2026-09-22")]  # two too many on one day: AUD-DAYQTY
    settlement = await own_kit.discharge(HOSPITAL, member, lines, "2026-09-20", "2026-09-25")
    stack_file = write_stack_file(own_kit.stack, tmp_path / "stack.json")

    async def cli(*arguments: str) -> tuple[int, str, str]:
        return await clearing_admin(*arguments, "--config", str(stack_file))

    code_, out, err = await cli("audit", "month", INSURED, SEPTEMBER,
                                           "--raise", "--json")
    assert code_ == 0, err
    result = json.loads(out)
    stay = next(item for item in result["stays"] if item["settlement_id"] == settlement.settlement_id)
    dayqty = [item for item in stay["findings"] if item["rule_id"] == "AUD-DAYQTY"]
    assert [(item["action"], item["amount_fen"]) for item in dayqty] == [("dispute", 2 * price)]
    raised = [item for item in result["raised"] if item["settlement_id"] == settlement.settlement_id]
    assert [(item["rule_id"], int(item["amount_fen"])) for item in raised] == [("AUD-DAYQTY", 2 * price)]
    dispute_id = raised[0]["dispute_id"]
    code_, out, err = await cli("audit", "month", INSURED, SEPTEMBER,
                                           "--raise", "--json")
    assert code_ == 0 and json.loads(out)["raised"] == [], err  # a second run raises nothing new
    code_, out, err = await cli("dispute", "answer", dispute_id, "--accept")
    assert code_ == 0, err
    assert "adjustment posted in 2026-10" in out
    code_, out, err = await cli("dispute", "show", dispute_id, "--json")
    shown = json.loads(out)
    assert shown["state"] == "DISPUTE_STATE_ACCEPTED" and shown["answered"]["by"] == "operator/admin"
    code_, out, err = await cli("dispute", "answer", dispute_id, "--appeal",
                                           "no")
    assert code_ == 2 and out == "" and err.startswith("error: FAILED_PRECONDITION") and "answer" in err, err
    code_, out, err = await cli("dispute", "list", "--region", INSURED)
    assert code_ == 0 and dispute_id[:8] in out


async def test_concurrent_copies_of_an_accept_post_one_adjustment(own_kit):
    """Six copies of one accept at once (a client retrying while the first runs): one answer, one adjustment."""
    connection = await own_kit.db("clearinghouse")
    settlement_id = str(await connection.fetchval(
        "SELECT settlement_id FROM claims WHERE discharged_on = '2026-09-25' AND status = 'settled' LIMIT 1"))
    key = str(uuid.uuid4())
    await as_agency(own_kit, INSURED).RaiseDispute(raise_request(settlement_id, 100, key, rule_id="", reason="重复"))
    answers = await asyncio.gather(*(as_agency(own_kit, TREATING).AnswerDispute(ch.AnswerDisputeRequest(
        request_id=str(uuid.uuid4()), dispute_id=key, answer=ch.DISPUTE_ANSWER_ACCEPT)) for _ in range(6)))
    assert len({answer.dispute.SerializeToString() for answer in answers}) == 1
    assert answers[0].dispute.state == ch.DISPUTE_STATE_ACCEPTED
    assert await connection.fetchval("SELECT count(*) FROM dispute_adjustments WHERE dispute_id = $1",
                                     uuid.UUID(key)) == 1
    assert await audit.dispute_mismatches(connection) == []
    assert await audit.aggregate_mismatches(connection) == []
