"""After a run: read every party's database directly and hold it to what the HIS saw (SPEC §8).

Each check returns how many things it looked at and the offending ids (settlement / request ids,
member numbers — never an ID number or a name), so a report says more than pass or fail:

* `succeeded_recorded`   (a) every settlement the HIS saw succeed exists exactly once, settled (or
                         cancelled, if the HIS cancelled it), at the treating agency, at the clearing
                         house (cross-region only) and at the insured agency, with the HIS's fund split;
* `refused_not_paid`     (b) nothing the HIS saw fail, reverse or cancel is settled at any party, and
                         the clearing house ledger's net for it is 0;
* `nothing_paid_unseen`  no party holds a settled settlement the HIS was not handed (a request the
                         HIS walked away from is exempt: reconciliation tells the hospital about it);
* `parties_agree`        every settlement is in the same state at every party on its path: settled
                         everywhere, cancelled everywhere, or paid nowhere (SPEC §8 atomicity);
* `ledger_balanced`, `balances_equal_postings`, `aggregates_equal_postings`, `statement_lines_equal_claims`
                         (c) the ledger, and the month-partitioned statement lines (migration 0014);
* `accumulators_recomputed`  (d) every member's accumulators equal the sum of the recorded deltas of
                         that member's live (settled) settlements; and each outpatient special disease's
                         (门诊慢特病) year and month pay equal those of its live visits;
* `no_pending`           (e) no settlement is left pending at any party;
* `unknowns_resolved`    the HIS knows the fate of every request it still pursues.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from clearing.member import YTD_FIELDS
from services.clearinghouse import audit
from services.common.logs import mask_id_number
from services.faults.journal import Entry, Journal, Outcome
from services.stack.config import StackConfig

FAILURES_KEPT = 50
SPLIT_FIELDS = ("total_fen", "fund_pay_fen", "psn_pay_fen", "hifp_fen", "hifmi_fen", "maf_fen")
RECEIVABLE = "treating/%/receivable/%"


@dataclass
class Check:
    name: str
    rule: str
    checked: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)  # the first FAILURES_KEPT

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def fail(self, message: str) -> None:
        self.failed += 1
        if len(self.failures) < FAILURES_KEPT:
            self.failures.append(mask_id_number(message))


@dataclass
class PartyRows:
    """What the checks need from every database, read once."""

    treating: dict[str, dict[str, Any]] = field(default_factory=dict)  # HIS request id → row
    treating_by_encounter: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    insured: dict[str, dict[str, Any]] = field(default_factory=dict)  # settlement id → row
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)  # settlement id → row
    ledger: dict[str, dict[str, Any]] = field(default_factory=dict)  # settlement id → transactions, net
    accumulator_rows: int = 0
    accumulator_mismatches: list[str] = field(default_factory=list)
    unbalanced: list[asyncpg.Record] = field(default_factory=list)
    balance_mismatches: list[asyncpg.Record] = field(default_factory=list)
    aggregate_mismatches: list[asyncpg.Record] = field(default_factory=list)
    line_mismatches: list[asyncpg.Record] = field(default_factory=list)
    dispute_mismatches: list[asyncpg.Record] = field(default_factory=list)
    disputes: int = 0
    adjustments: dict[str, tuple[str, int]] = field(default_factory=dict)  # dispute id → (treating region, fen)
    deductions: dict[str, tuple[str, int]] = field(default_factory=dict)  # dispute id → (treating region, fen)
    deduction_ledger: dict[str, tuple[int, int]] = field(default_factory=dict)  # region → (Σ deductions, ledger)
    lines: int = 0
    transactions: int = 0
    accounts: int = 0
    cells: int = 0


ACCUMULATOR_MISMATCHES_SQL = f"""
WITH recomputed AS (
    SELECT member_id, year, {", ".join(f"sum((delta->>'{name}')::bigint)::bigint AS {name}" for name in YTD_FIELDS)}
    FROM settlements WHERE status = 'settled' GROUP BY member_id, year)
SELECT member_id, year FROM accumulators a FULL JOIN recomputed r USING (member_id, year)
WHERE ({", ".join(f"a.{name}" for name in YTD_FIELDS)})
      IS DISTINCT FROM ({", ".join(f"coalesce(r.{name}, 0)" for name in YTD_FIELDS)})
ORDER BY member_id, year
"""


# The outpatient special-disease accumulators (门诊慢特病): each disease's year equals its live visits' moves, and the
# recorded month's pay equals that of the live visits of that month (a cancel or reversal gives its part back).
SPECIAL_MISMATCHES_SQL = """
WITH visits AS (
    SELECT member_id, year, disease, to_char(discharged_on, 'YYYY-MM') AS month,
           (special_delta->'after'->>'paid_fen')::bigint - (special_delta->'before'->>'paid_fen')::bigint AS pay,
           (special_delta->'after'->>'deductible_fen')::bigint - (special_delta->'before'->>'deductible_fen')::bigint
               AS deductible
    FROM settlements WHERE status = 'settled' AND med_type = 14),
recomputed AS (
    SELECT member_id, year, disease, sum(pay)::bigint AS paid_fen, sum(deductible)::bigint AS deductible_fen
    FROM visits GROUP BY 1, 2, 3)
SELECT member_id, year, disease FROM special_accumulators a FULL JOIN recomputed r USING (member_id, year, disease)
WHERE (coalesce(a.paid_fen, 0), coalesce(a.deductible_fen, 0))
      IS DISTINCT FROM (coalesce(r.paid_fen, 0), coalesce(r.deductible_fen, 0))
   OR coalesce(a.month_paid_fen, 0) <> coalesce((SELECT sum(v.pay) FROM visits v WHERE v.member_id = a.member_id
          AND v.year = a.year AND v.disease = a.disease AND v.month = a.month), 0)
ORDER BY member_id, year, disease
"""


async def read_parties(config: StackConfig) -> PartyRows:
    rows = PartyRows()
    for region in sorted(config.region_ports):
        conn = await asyncpg.connect(config.dsn(f"treating_{region}"))
        try:
            for row in await conn.fetch("SELECT settlement_id, request_id, encounter_id, status, local, total_fen, "
                                        "fund_pay_fen, psn_pay_fen FROM settlements"):
                item = {**dict(row), "settlement_id": str(row["settlement_id"]), "region": region}
                rows.treating[str(row["request_id"])] = item
                rows.treating_by_encounter.setdefault(str(row["encounter_id"]), []).append(item)
            for row in await conn.fetch("SELECT dispute_id, amount_fen FROM dispute_deductions"):
                rows.deductions[str(row["dispute_id"])] = (region, row["amount_fen"])
            rows.deduction_ledger[region] = (
                await conn.fetchval("SELECT coalesce(sum(amount_fen), 0)::bigint FROM dispute_deductions"),
                await conn.fetchval(
                    "SELECT coalesce(-sum(p.amount_fen), 0)::bigint FROM ledger_postings p JOIN ledger_transactions t "
                    "USING (tx_id) WHERE t.kind = 'dispute' AND p.account LIKE 'hospital/%/receivable'"))
        finally:
            await conn.close()
        conn = await asyncpg.connect(config.dsn(f"insured_{region}"))
        try:
            for row in await conn.fetch(f"SELECT settlement_id, member_id, status, {', '.join(SPLIT_FIELDS)} "
                                        "FROM settlements"):
                rows.insured[str(row["settlement_id"])] = {**dict(row), "region": region}
            rows.accumulator_rows += await conn.fetchval("SELECT count(*) FROM accumulators")
            rows.accumulator_mismatches += [f"{region}/{row['member_id']}/{row['year']}"
                                            for row in await conn.fetch(ACCUMULATOR_MISMATCHES_SQL)]
            rows.accumulator_rows += await conn.fetchval("SELECT count(*) FROM special_accumulators")
            rows.accumulator_mismatches += [f"{region}/{row['member_id']}/{row['year']}/{row['disease']}"
                                            for row in await conn.fetch(SPECIAL_MISMATCHES_SQL)]
        finally:
            await conn.close()
    conn = await asyncpg.connect(config.dsn("clearinghouse"))
    try:
        for row in await conn.fetch(f"SELECT settlement_id, status, {', '.join(SPLIT_FIELDS)} FROM claims"):
            rows.claims[str(row["settlement_id"])] = dict(row)
        for row in await conn.fetch(
                "SELECT t.settlement_id, count(DISTINCT t.tx_id) FILTER (WHERE t.kind = 'settlement') AS settlements, "
                "count(DISTINCT t.tx_id) FILTER (WHERE t.kind = 'cancel') AS cancels, "
                "coalesce(sum(p.amount_fen) FILTER (WHERE t.kind = 'settlement' AND p.account LIKE $1), 0)::bigint "
                "AS posted_fen, coalesce(sum(p.amount_fen) FILTER (WHERE p.account LIKE $1 AND t.kind <> 'dispute'), 0)"
                "::bigint AS net_fen "  # a dispute's adjustment is checked on its own (disputes_adjusted_once)
                "FROM ledger_transactions t JOIN ledger_postings p USING (tx_id) "
                "WHERE t.settlement_id IS NOT NULL GROUP BY t.settlement_id", RECEIVABLE):
            rows.ledger[str(row["settlement_id"])] = dict(row)
        rows.unbalanced = await audit.unbalanced_transactions(conn)
        rows.balance_mismatches = await audit.balance_mismatches(conn)
        rows.aggregate_mismatches = await audit.aggregate_mismatches(conn)
        rows.line_mismatches = await audit.statement_line_mismatches(conn)
        rows.dispute_mismatches = await audit.dispute_mismatches(conn)
        rows.disputes = await conn.fetchval("SELECT count(*) FROM disputes")
        for row in await conn.fetch("SELECT dispute_id, treating_region, amount_fen FROM dispute_adjustments"):
            rows.adjustments[str(row["dispute_id"])] = (row["treating_region"], row["amount_fen"])
        rows.lines = await conn.fetchval("SELECT count(*) FROM statement_lines")
        rows.transactions = await conn.fetchval("SELECT count(*) FROM ledger_transactions")
        rows.accounts = await conn.fetchval("SELECT count(*) FROM ledger_balances")
        rows.cells = await conn.fetchval("SELECT count(*) FROM clearing_aggregates")
    finally:
        await conn.close()
    return rows


async def check_all(config: StackConfig, journal: Journal) -> list[Check]:
    rows = await read_parties(config)
    return [succeeded_recorded(journal, rows), refused_not_paid(journal, rows), nothing_paid_unseen(journal, rows),
            parties_agree(rows), *ledger_checks(rows), deductions_booked(rows), accumulators_recomputed(rows),
            no_pending(rows), unknowns_resolved(journal)]


def deductions_booked(rows: PartyRows) -> Check:
    """The treating agencies' deductions (扣款) are the clearing house's dispute adjustments, one for one, and each
    agency's ledger took exactly that off its hospitals' receivables."""
    check = Check("deductions_equal_adjustments", "every dispute adjustment at the clearing house is booked once by "
                  "its treating agency, for the same amount, and the agency's ledger moved exactly that",
                  len(rows.adjustments))
    for dispute_id in sorted(set(rows.adjustments) | set(rows.deductions)):
        if rows.adjustments.get(dispute_id) != rows.deductions.get(dispute_id):
            check.fail(f"dispute {dispute_id}: clearing house {rows.adjustments.get(dispute_id)}, treating agency "
                       f"{rows.deductions.get(dispute_id)}")
    for region, (deducted, ledger) in sorted(rows.deduction_ledger.items()):
        if deducted != ledger:
            check.fail(f"{region}: deductions {deducted} fen, ledger {ledger} fen")
    return check


def split_of(row: dict[str, Any], fields: tuple[str, ...] = SPLIT_FIELDS) -> tuple[int, ...]:
    return tuple(row[name] for name in fields)


def succeeded_recorded(journal: Journal, rows: PartyRows) -> Check:
    check = Check("succeeded_recorded", "every settlement the HIS saw succeed is recorded once, as the HIS saw it, "
                                        "at every party on its path")
    for entry in journal.with_outcome(Outcome.SUCCEEDED, Outcome.CANCELLED):
        check.checked += 1
        for problem in problems_of_success(entry, rows):
            check.fail(f"{entry.request_id} (settlement {entry.settlement_id}): {problem}")
    return check


def problems_of_success(entry: Entry, rows: PartyRows) -> list[str]:
    assert entry.split is not None
    expected = "cancelled" if entry.outcome is Outcome.CANCELLED else "settled"
    split = tuple(getattr(entry.split, name) for name in SPLIT_FIELDS)
    found = []
    treating = rows.treating.get(entry.request_id)
    if treating is None:
        found.append("missing at the treating agency")
    else:
        if treating["settlement_id"] != entry.settlement_id:
            found.append(f"the treating agency names settlement {treating['settlement_id']}")
        if treating["status"] != expected:
            found.append(f"{treating['status']} at the treating agency, expected {expected}")
        if split_of(treating, SPLIT_FIELDS[:3]) != split[:3]:
            found.append(f"treating agency split {split_of(treating, SPLIT_FIELDS[:3])} ≠ HIS {split[:3]}")
    live = [row for row in rows.treating_by_encounter.get(entry.encounter_id, [])
            if row["status"] in ("pending", "settled", "cancelled")]
    if len(live) != 1:
        found.append(f"the encounter has {len(live)} settlements at the treating agency, expected 1")
    insured = rows.insured.get(entry.settlement_id)
    if insured is None:
        found.append("missing at the insured agency")
    elif insured["status"] != expected or split_of(insured) != split or insured["member_id"] != entry.member_id:
        found.append(f"insured agency has {insured['status']} {split_of(insured)}, HIS saw {expected} {split}")
    claim = rows.claims.get(entry.settlement_id)
    ledger = rows.ledger.get(entry.settlement_id)
    if entry.local:
        if claim is not None or ledger is not None:
            found.append("a same-region settlement reached the clearing house")
        return found
    if claim is None:
        found.append("missing at the clearing house")
    elif claim["status"] != expected or split_of(claim) != split:
        found.append(f"clearing house has {claim['status']} {split_of(claim)}, HIS saw {expected} {split}")
    cancels = 1 if expected == "cancelled" else 0
    if entry.split.fund_pay_fen == 0:  # the funds pay nothing: nothing is posted (the claim still counts)
        if ledger is not None:
            found.append("the ledger has transactions for a settlement the funds pay nothing for")
    elif ledger is None or (ledger["settlements"], ledger["cancels"]) != (1, cancels):
        found.append(f"ledger has {ledger and ledger['settlements']} settlement and {ledger and ledger['cancels']} "
                     f"cancel transactions, expected 1 and {cancels}")
    elif (ledger["posted_fen"], ledger["net_fen"]) != (entry.split.fund_pay_fen, entry.split.fund_pay_fen * (1 - cancels)):
        found.append(f"ledger posted {ledger['posted_fen']} net {ledger['net_fen']} fen, fund pays "
                     f"{entry.split.fund_pay_fen}")
    return found


def refused_not_paid(journal: Journal, rows: PartyRows) -> Check:
    check = Check("refused_not_paid", "nothing the HIS saw fail, reverse or cancel is settled anywhere; its ledger "
                                      "net is 0")
    for entry in journal.with_outcome(Outcome.FAILED, Outcome.REVERSED, Outcome.CANCELLED):
        check.checked += 1
        treating = rows.treating.get(entry.request_id)
        settlement_id = treating["settlement_id"] if treating is not None else entry.settlement_id
        paid = []
        if treating is not None and treating["status"] == "settled":
            paid.append("treating agency")
        if settlement_id:
            if rows.insured.get(settlement_id, {}).get("status") == "settled":
                paid.append("insured agency")
            if rows.claims.get(settlement_id, {}).get("status") == "settled":
                paid.append("clearing house")
            net = rows.ledger.get(settlement_id, {}).get("net_fen", 0)
            if net != 0:
                paid.append(f"ledger net {net} fen")
        if paid:
            check.fail(f"{entry.request_id} (settlement {settlement_id or '-'}, HIS saw {entry.outcome}): "
                       f"paid at {', '.join(paid)}")
    return check


def nothing_paid_unseen(journal: Journal, rows: PartyRows) -> Check:
    check = Check("nothing_paid_unseen", "every settled settlement at any party is one the HIS was handed")
    requests = {entry.request_id for entry in journal.with_outcome(Outcome.SUCCEEDED)}
    walked_away = {entry.request_id for entry in journal.abandoned()}
    handed = {entry.settlement_id for entry in journal.with_outcome(Outcome.SUCCEEDED)} | {
        rows.treating[request_id]["settlement_id"] for request_id in walked_away if request_id in rows.treating}
    for request_id, row in rows.treating.items():
        if row["status"] == "settled":
            check.checked += 1
            if request_id not in requests and request_id not in walked_away:
                check.fail(f"{row['settlement_id']} settled at treating agency {row['region']}, request {request_id} "
                           "not seen to succeed by the HIS")
    for party, table in (("insured agency", rows.insured), ("clearing house", rows.claims)):
        for settlement_id, row in table.items():
            if row["status"] == "settled":
                check.checked += 1
                if settlement_id not in handed:
                    check.fail(f"{settlement_id} settled at the {party}, not a settlement the HIS holds")
    return check


def parties_agree(rows: PartyRows) -> Check:
    check = Check("parties_agree", "each settlement is settled at every party on its path, cancelled at every "
                                   "one, or paid at none")
    for row in rows.treating.values():
        if row["status"] == "pending":
            continue  # no_pending names it
        check.checked += 1
        settlement_id = row["settlement_id"]
        expected = row["status"] if row["status"] in ("settled", "cancelled") else None  # None: paid nowhere
        found = {"insured agency": rows.insured.get(settlement_id, {}).get("status")}
        if not row["local"]:
            found["clearing house"] = rows.claims.get(settlement_id, {}).get("status")
        for party, status in found.items():
            if expected is not None and status != expected:
                check.fail(f"{settlement_id}: {expected} at treating agency {row['region']}, {status} at the {party}")
            elif expected is None and status in ("settled", "cancelled"):
                check.fail(f"{settlement_id}: {row['status']} at treating agency {row['region']}, {status} at the "
                           f"{party}")
    return check


def ledger_checks(rows: PartyRows) -> list[Check]:
    balanced = Check("ledger_balanced", "every ledger transaction has postings summing to 0", rows.transactions)
    for row in rows.unbalanced:
        balanced.fail(f"tx {row['tx_id']} ({row['kind']} of {row['settlement_id']}): Σ {row['total']} fen over "
                      f"{row['postings']} postings")
    balances = Check("balances_equal_postings", "every cached account balance equals Σ its postings", rows.accounts)
    for row in rows.balance_mismatches:
        balances.fail(f"{row['account']}: cached {row['balance_fen']}, postings {row['total']}")
    aggregates = Check("aggregates_equal_postings", "every month aggregate equals a recomputation from the claims, "
                       "and its amount the month's postings", rows.cells)
    for row in rows.aggregate_mismatches:
        aggregates.fail(f"{row['clearing_month']} {row['insured_region']}→{row['treating_region']}: "
                        f"aggregate ({row['settlements']}, {row['cancels']}, {row['fund_pay_fen']}) ≠ recomputed "
                        f"({row['recomputed_settlements']}, {row['recomputed_cancels']}, "
                        f"{row['recomputed_fund_pay_fen']}) or posted {row['posted_fund_pay_fen']}")
    lines = Check("statement_lines_equal_claims", "every statement line is a claim's settlement or undo, in the month "
                  "it clears in, and every one has its line", rows.lines)
    for row in rows.line_mismatches:
        lines.fail(f"{row['month']} {row['kind']} of {row['settlement_id']}: the line and the claim differ")
    adjusted = Check("disputes_adjusted_once", "every accepted, lapsed or upheld dispute has exactly one balanced "
                     "adjustment of its amount in the month it names, and no other dispute has one", rows.disputes)
    for row in rows.dispute_mismatches:
        adjusted.fail(f"dispute {row['dispute_id']} ({row['state']}): adjusted in {row['adjusted_month']}, "
                      f"adjustment {row['amount_fen']} fen in {row['month']} ({row['kind']} in {row['tx_month']})")
    return [balanced, balances, aggregates, lines, adjusted]


def accumulators_recomputed(rows: PartyRows) -> Check:
    check = Check("accumulators_recomputed", "every member's accumulators equal Σ deltas of their live settlements",
                  rows.accumulator_rows)
    for member in rows.accumulator_mismatches:
        check.fail(f"member {member}: accumulators differ from the recomputation")
    return check


def no_pending(rows: PartyRows) -> Check:
    check = Check("no_pending", "no settlement is left pending at any party", len(rows.treating) + len(rows.claims))
    for row in rows.treating.values():
        if row["status"] == "pending":
            downstream = {"insured agency": rows.insured.get(row["settlement_id"], {}).get("status", "absent")}
            if not row["local"]:
                downstream["clearing house"] = rows.claims.get(row["settlement_id"], {}).get("status", "absent")
            check.fail(f"{row['settlement_id']} pending at treating agency {row['region']} ("
                       + ", ".join(f"{status} at the {party}" for party, status in downstream.items()) + ")")
    for settlement_id, row in rows.claims.items():
        if row["status"] == "pending":
            check.fail(f"{settlement_id} pending at the clearing house")
    return check


def unknowns_resolved(journal: Journal) -> Check:
    check = Check("unknowns_resolved", "the HIS knows the fate of every settlement and cancel it sent",
                  sum(1 for entry in journal.entries.values() if entry.unknown_answers or entry.cancel_request_id))
    for entry in journal.unresolved():
        what = "cancel" if entry.outcome is not Outcome.UNKNOWN else "settlement"
        check.fail(f"{entry.request_id}: {what} still unknown after settling down ({entry.error})")
    return check
