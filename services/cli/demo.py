"""`make demo`: the whole product on one machine — embedded Postgres, every party as its own
process, a realistic month of cross-region discharges, the result as tables and a report.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import asyncpg
import grpc
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import clearing_house_pb2_grpc, hospital_pb2, hospital_pb2_grpc
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import treating_agency_pb2_grpc
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clearing.money import format_yuan
from services.common.clock import shanghai_instant, shanghai_today
from services.common.regions import load_regions
from services.security.party import Transport
from services.stack.config import operator_identity
from services.stack.config import PREPAYMENT_FEN
from services.stack.enrol import enrol_all, fund_prepayments
from services.stack.processes import StackProcesses
from services.cli.netting_view import show_closing, write_chart
from services.cli.online import show_transfers
from services.stack.database import exit_on_sigterm

DEMO_DIR = Path("var/demo")
DEMO_PREPAYMENT_FEN = PREPAYMENT_FEN


@dataclass(frozen=True)
class PairRow:
    treating: str
    insured: str
    stays: int
    total_fen: int
    fund_pay_fen: int
    psn_pay_fen: int

    @property
    def spared_bp(self) -> int:
        """Share of the bill the patient did not have to advance (基金直接结算部分)."""
        return self.fund_pay_fen * 10_000 // self.total_fen if self.total_fen else 0


def previous_month(today: date) -> str:
    return (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def percent(bp: int) -> str:
    return f"{bp // 100}.{bp % 100:02d} %"


def operator_channel(transport: Transport, address: str) -> grpc.aio.Channel:
    """The demo's operator calls (and its view of the HIS simulator) go as the operator, over mutual TLS."""
    return transport.channel(address, operator_identity())


async def run_demo(console: Console, count: int, members: int, concurrency: int, seed: int,
                   work_dir: Path = DEMO_DIR, insecure: bool = False) -> list[PairRow]:
    """The month before this one, lived through on a demo clock (services/common/clock.py): the stays are
    discharged and settled at discharge during the month, which is then over; on the 1st the parties reconcile
    and the clearing house closes it; on the 3rd the regions pay their net transfers and the month is cleared."""
    started = time.monotonic()
    month = previous_month(shanghai_today())
    timeline = DemoTimeline(month)
    stack = StackProcesses(work_dir=work_dir, seed=seed, members_per_region=members, clock_file=work_dir / "clock",
                           insecure=insecure)
    try:
        await stack.move_clock_to(timeline.discharges)
        with console.status("Starting Postgres and every party as its own process…"):
            config = await stack.start()
        transport = config.transport()
        console.print(f"[green]✓[/] {len(stack.services)} services up "
                      f"(clearing house, HIS simulator, {len(config.region_ports)} regions) "
                      f"in {time.monotonic() - started:.1f} s, "
                      + ("[bold red]plaintext (--insecure)[/]" if config.insecure else
                         f"mutual TLS (certificates in {config.certs_dir})"))
        addresses = {region: config.address(port) for region, port in config.region_ports.items()}
        clearing_house = config.address(config.clearing_house_port)
        with console.status("Importing catalogues and enrolling members…"):
            await enrol_all(addresses, seed, members, transport=transport)
        await fund_prepayments(clearing_house, list(addresses), seed, DEMO_PREPAYMENT_FEN, transport=transport)
        console.print(f"[green]✓[/] catalogues imported, {members} members enrolled per region, prepayments of "
                      f"{format_yuan(DEMO_PREPAYMENT_FEN)} ¥ deposited")
        console.print(f"[bold]{timeline.discharges:%Y-%m-%d %H:%M} (Asia/Shanghai, the demo's clock):[/] hospitals "
                      f"discharge the stays of {month} and settle each at discharge (即时结算).")
        rows = await discharge(console, transport, config.address(config.his_port), count, concurrency, seed, month)
        print_summary(console, rows, month)
        visits = await run_visits(console, transport, config.address(config.his_port), concurrency, month)
        print_visits(console, visits, month)
        print_audit(console, await audit_counts(config, month), sorted(addresses))
        await dispute_cycle(console, config, transport, month)

        await stack.move_clock_to(timeline.closing)
        console.print(f"[bold]{timeline.closing:%Y-%m-%d %H:%M}:[/] {month} is over. Every pair of neighbours "
                      f"reconciles (对账), then the clearing house closes the month (月结).")
        await reconcile_days(console, config, month)
        before = await prepayments(transport, clearing_house)
        show_prepayments(console, before, f"Prepayments (预付金) before the close: {month}'s draws are still out")
        closing = await close_month(transport, clearing_house, month)
        show_closing(console, closing)
        write_chart(str(work_dir / "netting.png"), closing)

        await stack.move_clock_to(timeline.payments)
        console.print(f"[bold]{timeline.payments:%Y-%m-%d %H:%M}:[/] the regions pay their net transfers through the "
                      "clearing house; each confirmed payment clears the region's month (清算). Each treating agency "
                      "closes its payout list to its hospitals (拨付).")
        status = await confirm_transfers(transport, clearing_house, month)
        show_transfers(console, status)
        payouts = await close_payout_months(transport, addresses, month)
        show_payouts(console, payouts, month)
        await drg_month(console, transport, addresses[DRG_DEMO_REGION], month)
        after = await prepayments(transport, clearing_house)
        show_prepayments(console, after, f"Prepayments after {month} is cleared: draws given back, re-sized from "
                                         "recent outflow")
        write_report(work_dir, DemoResult(rows, month, closing, status, before, after, time.monotonic() - started))
        console.print(f"Report: {work_dir / 'report.md'}, {work_dir / 'report.png'} and {work_dir / 'netting.png'}")
        return rows
    finally:
        with console.status("Stopping every service…"):
            stack.stop()
        console.print(f"[green]✓[/] stopped cleanly; wall time {time.monotonic() - started:.1f} s")


@dataclass(frozen=True)
class DemoTimeline:
    """The instants the demo's clock is moved to (Asia/Shanghai) for the month it lives through."""

    month: str

    @property
    def discharges(self) -> datetime:
        """The month's last evening: every stay of the month is discharged by then."""
        first = date.fromisoformat(f"{self.month}-01")
        last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        return shanghai_instant(last, hour=20)

    @property
    def closing(self) -> datetime:
        return shanghai_instant(self.discharges.date() + timedelta(days=1), hour=9)

    @property
    def payments(self) -> datetime:
        return shanghai_instant(self.discharges.date() + timedelta(days=3), hour=10)


@dataclass(frozen=True)
class DemoResult:
    """What the demo's report shows."""

    rows: list[PairRow]
    month: str
    closing: ch.MonthClosing
    status: ch.GetMonthClosingResponse
    prepayments_before: list[ch.Prepayment]
    prepayments_after: list[ch.Prepayment]
    wall_s: float


async def discharge(console: Console, transport: Transport, his_address: str, count: int, concurrency: int,
                    seed: int, month: str) -> list[PairRow]:
    async with operator_channel(transport, his_address) as channel:
        hospital = hospital_pb2_grpc.HospitalServiceStub(channel)
        with Progress(TextColumn("Discharging patients"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("discharges", total=count, failed=0)
            async for update in hospital.RunDischarges(hospital_pb2.RunDischargesRequest(
                    request_id=str(uuid.uuid4()), count=count, seed=seed, concurrency=concurrency, month=month)):
                progress.update(task, completed=update.done, failed=update.failed)
        summary = await hospital.GetSummary(hospital_pb2.GetSummaryRequest(month=month))
    return [PairRow(p.treating_region, p.insured_region, p.stays, p.total_fen, p.fund_pay_fen, p.psn_pay_fen)
            for p in summary.pairs]


async def audit_counts(config, month: str) -> dict[tuple[str, str, str], int]:  # noqa: ANN001 - a StackConfig
    """What smart audit (智能审核) caught in the month's discharges, as the HIS saw it: (rule id, treating region,
    "warn" | "block") → discharges. `warn`: recorded with the settlement (action warn or dispute); `block`: a Settle
    refused (the HIS voided the violating lines and settled again, or — an overlapping stay — the refusal stood)."""
    connection = await asyncpg.connect(config.dsn("his"))
    try:
        rows = await connection.fetch(
            "SELECT rule, treating_region, kind, count(*) AS n FROM ("
            " SELECT unnest(audit_warned) AS rule, treating_region, 'warn' AS kind FROM discharges WHERE month = $1"
            " UNION ALL"
            " SELECT unnest(audit_blocked), treating_region, 'block' FROM discharges WHERE month = $1) AS found "
            "GROUP BY 1, 2, 3", month)
    finally:
        await connection.close()
    return {(row["rule"], row["treating_region"], row["kind"]): row["n"] for row in rows}


def print_audit(console: Console, counts: dict[tuple[str, str, str], int], regions: list[str]) -> None:
    """A table of what audit caught, by rule and treating region: warned / blocked discharges."""
    from clearing.smart_audit.library import RULE_NAMES, RuleId

    table = Table(title="Smart audit (智能审核) at settlement: discharges warned / blocked, by rule and treating "
                        "region", caption="warn: recorded with the settlement (action warn, or dispute: for 事后); block: "
                                          "Settle refused — the HIS voided the violating lines (退费) and settled "
                                          "again, or (AUD-OVERLAP) the refusal stood")
    table.add_column("rule")
    for region in regions:
        table.add_column(region, justify="right")
    table.add_column("total", justify="right")
    for rule in RuleId:
        cells = [counts.get((rule.value, region, "warn"), 0) for region in regions], \
            [counts.get((rule.value, region, "block"), 0) for region in regions]
        table.add_row(f"{rule.value} {RULE_NAMES[rule]}",
                      *(f"{warned}/{blocked}" if warned or blocked else "·" for warned, blocked in zip(*cells)),
                      f"{sum(cells[0])}/{sum(cells[1])}")
    console.print(table)


DISPUTING_REGION = "460100"  # its rule library sends AUD-DAYQTY, AUD-BEDDAYS and AUD-EXCL to dispute


async def dispute_cycle(console: Console, config, transport: Transport, month: str) -> None:  # noqa: ANN001
    """事后 and disputes (拒付 / 申诉): the disputing region's monthly audit of its members' stays elsewhere, then one
    dispute accepted by the treating agency and one appealed and decided (upheld) by the clearing house. Their
    adjustments count in this month, still open: they show in its netting and in the hospitals' payout lists."""
    from services.cli import dispute_view

    operator = operator_identity()
    audit = await dispute_view.run_month_audit(config, transport, operator, DISPUTING_REGION, month, False)
    dispute_view.show_month_audit(console, audit)
    async with operator_channel(transport, config.address(config.clearing_house_port)) as channel:
        stub = clearing_house_pb2_grpc.ClearingHouseServiceStub(channel)
        raised, _ = await dispute_view.raise_from_findings(stub, DISPUTING_REGION, audit.audited, limit=2)
        disputed = {item.settlement_id for item in raised}
        spare = [stay for stay, _ in audit.audited if stay.settlement_id not in disputed and stay.fund_pay_fen > 0]
        for stay in spare[:max(0, 2 - len(raised))]:
            raised.append((await stub.RaiseDispute(ch.RaiseDisputeRequest(  # too few findings: by hand
                request_id=str(uuid.uuid4()), settlement_id=stay.settlement_id,
                amount_fen=max(1, stay.fund_pay_fen // 20), reason="重复收费: billed twice on one day (by hand)",
                insured_region=DISPUTING_REGION), timeout=30)).dispute)
        if len(raised) < 2:
            console.print(f"(no two cross-region stays of {DISPUTING_REGION}'s members to dispute this month)")
            return
        first, second = raised[:2]
        accepted = (await stub.AnswerDispute(ch.AnswerDisputeRequest(
            request_id=str(uuid.uuid4()), dispute_id=first.dispute_id, answer=ch.DISPUTE_ANSWER_ACCEPT),
            timeout=30)).dispute
        await stub.AnswerDispute(ch.AnswerDisputeRequest(
            request_id=str(uuid.uuid4()), dispute_id=second.dispute_id, answer=ch.DISPUTE_ANSWER_APPEAL,
            appeal_text="申诉: the extra quantity was ordered by the physician"), timeout=30)
        upheld = (await stub.DecideDispute(ch.DecideDisputeRequest(
            request_id=str(uuid.uuid4()), dispute_id=second.dispute_id, decision=ch.DISPUTE_DECISION_UPHELD),
            timeout=30)).dispute
    console.print(f"{DISPUTING_REGION} raises two disputes (拒付); the treating agency accepts the first and appeals "
                  "the second (申诉), which the clearing house upholds:")
    for item in (accepted, upheld):
        dispute_view.show_dispute(console, item)
    dispute_view.show_disputes(console, [accepted, upheld], f"Disputes of {month}: adjusted in the first open month")


async def settlement_days(config, month: str) -> list[str]:  # noqa: ANN001 - a StackConfig
    """Every day the month's stays can have been settled on: from the HIS's first Settle of them (the day its
    answer named, or the day it sent it) through today. An agency makes a settlement's day when the Settle
    arrives, so one sent just before midnight is on the next day there: the days run on to today."""
    connection = await asyncpg.connect(config.dsn("his"))
    try:
        first = await connection.fetchval("SELECT min(settlement_day) FROM discharges WHERE month = $1", month)
    finally:
        await connection.close()
    today = shanghai_today()
    if first is None:
        return []
    return [(first + timedelta(days=offset)).isoformat() for offset in range((today - first).days + 1)]


async def reconcile_days(console: Console, config, month: str) -> None:  # noqa: ANN001 - a StackConfig
    """对账 (3201/3202) of every day the month's stays were settled on, between every pair of neighbours,
    as `clearing-admin reconcile` does day by day; prints what differed and what was repaired."""
    from clearinghouse.v1 import clearing_house_pb2 as ch, clearing_house_pb2_grpc
    from clearinghouse.v1 import treating_agency_pb2 as ta, treating_agency_pb2_grpc

    days = await settlement_days(config, month)
    channels = [operator_channel(config.transport(), config.address(port))
                for port in (config.his_port, config.clearing_house_port, *config.region_ports.values())]
    try:
        his, clearing = (hospital_pb2_grpc.HospitalServiceStub(channels[0]),
                         clearing_house_pb2_grpc.ClearingHouseServiceStub(channels[1]))
        agencies = [treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel) for channel in channels[2:]]

        async def one_day(day: str) -> list:
            reports = list((await his.ReconcileWithAgencies(
                hospital_pb2.ReconcileWithAgenciesRequest(day=day), timeout=300)).reports)
            reports += (await clearing.ReconcileInsuredAgencies(
                ch.ReconcileInsuredAgenciesRequest(day=day), timeout=300)).reports
            for agency in agencies:
                reports += (await agency.Reconcile(ta.ReconcileRequest(day=day), timeout=300)).reports
            return reports

        with console.status(f"Reconciling {len(days)} days between every pair of neighbours (3201/3202)…"):
            reports = [report for day_reports in await asyncio.gather(*(one_day(day) for day in days))
                       for report in day_reports]
    finally:
        for channel in channels:
            await channel.close()
    repairs = [item for report in reports for item in report.repairs]
    agreed = sum(report.totals_agreed for report in reports)
    console.print(f"[green]✓[/] 对账: {len(days)} days × {len(reports) // max(len(days), 1)} pairs of neighbours, "
                  f"totals agreed in {agreed} of {len(reports)}; {len(repairs)} differences, "
                  f"{sum(item.repaired for item in repairs)} repaired")
    for item in repairs:
        console.print(f"  {item.pair} {item.key}: {item.upstream_status or '—'} / {item.downstream_status or '—'} "
                      f"→ {item.action} ({'repaired' if item.repaired else item.error or 'reported'})")


async def prepayments(transport: Transport, address: str) -> list[ch.Prepayment]:
    async with operator_channel(transport, address) as channel:
        answer = await clearing_house_pb2_grpc.ClearingHouseServiceStub(channel).ListPrepayments(
            ch.ListPrepaymentsRequest(), timeout=30)
    return list(answer.prepayments)


def show_prepayments(console: Console, items: list[ch.Prepayment], title: str) -> None:
    from services.cli.online import show_prepayments as table

    console.print(f"[bold]{title}[/]")
    table(console, items)


async def close_month(transport: Transport, address: str, month: str) -> ch.MonthClosing:
    """Close the month the settlements committed in (it is over by the clearing house's clock)."""
    async with operator_channel(transport, address) as channel:
        answer = await clearing_house_pb2_grpc.ClearingHouseServiceStub(channel).CloseMonth(
            ch.CloseMonthRequest(request_id=str(uuid.uuid4()), month=month), timeout=60)
    return answer.closing


DRG_DEMO_REGION = "440100"  # 广州: the busiest demo region; its cross-region stays are in its DRG (the switch on)


async def drg_month(console: Console, transport: Transport, address: str, month: str) -> None:
    """One region pays its hospitals for the month (issue 13), now that its payout list is closed: computed and
    posted by its treating agency (CloseHospitalPaymentMonth; weights from the same year's settled stays, frozen
    for the year), cross-region stays included, with the DRG budget's gain or loss on them."""
    from services.cli import payment_view

    console.print(f"{DRG_DEMO_REGION} pays its hospitals for {month} by DRG points (按病组点数法付费): the stays "
                  "grouped with CHS-DRG 1.1, weights from the region's own settled stays of the year; posted as "
                  "ledger transfers that settle the month's receivables.")
    async with operator_channel(transport, address) as channel:
        stub = treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel)
        try:
            answer = await stub.CloseHospitalPaymentMonth(ta.CloseHospitalPaymentMonthRequest(month=month), timeout=120)
        except grpc.aio.AioRpcError as error:
            console.print(f"no DRG payment: {error.details()}")
            return
        payment_view.show_month(console, DRG_DEMO_REGION, answer)
        # The year so far (a preview, nothing posted): the month's points against the budget's twelfth.
        preview = await stub.CloseHospitalPaymentYear(ta.CloseHospitalPaymentYearRequest(
            year=month[:4], validate_only=True), timeout=120)
    payment_view.show_year(console, DRG_DEMO_REGION, preview)


async def close_payout_months(transport: Transport, addresses: dict[str, str],
                              month: str) -> dict[str, ta.ListPayoutsResponse]:
    """Every treating agency closes the month's payout list to its hospitals (拨付): frozen from now on."""
    lists = {}
    for region, address in sorted(addresses.items()):
        async with operator_channel(transport, address) as channel:
            answer = await treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel).ClosePayoutMonth(
                ta.ClosePayoutMonthRequest(request_id=str(uuid.uuid4()), month=month, allow_empty=True), timeout=60)
        lists[region] = answer.payout_list
    return lists


def show_payouts(console: Console, lists: dict[str, ta.ListPayoutsResponse], month: str) -> None:
    names = {code: region.name for code, region in load_regions().items()}
    table = Table(title=f"Payout lists of {month} (拨付), closed by each treating agency: what it owes its hospitals")
    for header in ("treating region", "hospitals", "local ¥", "cross-region ¥", "deducted (扣款) ¥", "total ¥", "list"):
        table.add_column(header, justify="left" if header in ("treating region", "list") else "right")
    for region, item in lists.items():
        local = sum(payout.local_fen for payout in item.payouts)
        cross = sum(payout.cross_region_fen for payout in item.payouts)  # deductions already subtracted
        deducted = sum(payout.deducted_fen for payout in item.payouts)
        assert local + cross == item.total_fen
        table.add_row(f"{names.get(region, region)} {region}", str(len(item.payouts)), format_yuan(local),
                      format_yuan(cross), format_yuan(deducted), format_yuan(item.total_fen),
                      "closed, frozen" if item.closed else "open")
    console.print(table)


async def confirm_transfers(transport: Transport, address: str, month: str) -> ch.GetMonthClosingResponse:
    """Every region pays (or is paid) its hub transfer, and the operator confirms each payment."""
    async with operator_channel(transport, address) as channel:
        stub = clearing_house_pb2_grpc.ClearingHouseServiceStub(channel)
        status = await stub.GetMonthClosing(ch.GetMonthClosingRequest(month=month), timeout=30)
        for item in status.transfers:
            if not item.cleared:
                await stub.ConfirmTransfer(ch.ConfirmTransferRequest(
                    request_id=str(uuid.uuid4()), month=month, region=item.region, amount_fen=item.transfer.amount_fen,
                    reference=f"DEMO-{month}-{item.region}"), timeout=30)
        return await stub.GetMonthClosing(ch.GetMonthClosingRequest(month=month), timeout=30)


def print_summary(console: Console, rows: list[PairRow], month: str) -> None:
    names = {code: region.name for code, region in load_regions().items()}
    table = Table(title=f"Stays discharged in {month}, each settled at discharge — so their clearing month (the month "
                        f"a settlement commits in, Asia/Shanghai) is {month} too — by region pair (就医地 → 参保地)")
    for header, justify in (("treating → insured", "left"), ("stays", "right"), ("total ¥", "right"),
                            ("fund paid ¥", "right"), ("patient paid ¥", "right"), ("spared", "right")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        pair = f"{names.get(row.treating, row.treating)} → {names.get(row.insured, row.insured)}"
        pair += " (local)" if row.treating == row.insured else f" ({row.treating}→{row.insured})"
        table.add_row(pair, str(row.stays),
                      format_yuan(row.total_fen), format_yuan(row.fund_pay_fen), format_yuan(row.psn_pay_fen),
                      percent(row.spared_bp))
    total = PairRow("", "", sum(r.stays for r in rows), sum(r.total_fen for r in rows),
                    sum(r.fund_pay_fen for r in rows), sum(r.psn_pay_fen for r in rows))
    assert total.fund_pay_fen + total.psn_pay_fen == total.total_fen
    table.add_section()
    table.add_row("all pairs", str(total.stays), format_yuan(total.total_fen), format_yuan(total.fund_pay_fen),
                  format_yuan(total.psn_pay_fen), percent(total.spared_bp))
    console.print(table)


VISITS_MAX = 100_000  # every planned visit of the month (about 1.5 a member with a recognised disease)


async def run_visits(console: Console, transport: Transport, his_address: str, concurrency: int,
                     month: str) -> list[hospital_pb2.VisitSummary]:
    """The month's outpatient special-disease visits (门诊慢特病) of the members enrolment recognised, beside the
    stays: dialysis three times a week, monthly prescriptions, chemotherapy cycles (services/datagen/visits.py)."""
    async with operator_channel(transport, his_address) as channel:
        hospital = hospital_pb2_grpc.HospitalServiceStub(channel)
        run_id = str(uuid.uuid4())
        with Progress(TextColumn("Outpatient special-disease visits"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("visits", total=None, failed=0)
            async for update in hospital.RunVisits(hospital_pb2.RunVisitsRequest(
                    request_id=run_id, month=month, count=VISITS_MAX, concurrency=concurrency)):
                progress.update(task, total=update.total, completed=update.done, failed=update.failed)
        summary = await hospital.GetSummary(hospital_pb2.GetSummaryRequest(month=month, run_request_id=run_id))
    return list(summary.visits)


def print_visits(console: Console, visits: list[hospital_pb2.VisitSummary], month: str) -> None:
    """The month's visits by disease and insured region: patients, visits (of them away from home), the bill, what
    the funds paid, and how many visits used the disease's limit up (the annual limit, or the month's 定额)."""
    from clearing.explain import DISEASES_ZH
    from clearinghouse.v1 import types_pb2

    names = {code: region.name for code, region in load_regions().items()}
    table = Table(title=f"Outpatient special-disease visits (门诊慢特病, med_type 14) in {month}, settled at each visit "
                        "(2207), by disease and insured region (参保地)")
    for header, justify in (("disease", "left"), ("insured", "left"), ("patients", "right"), ("visits", "right"),
                            ("away 异地", "right"), ("total ¥", "right"), ("fund paid ¥", "right"),
                            ("limits met", "right")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for item in visits:
        key = types_pb2.SpecialDisease.Name(item.disease).removeprefix("SPECIAL_DISEASE_").lower()
        table.add_row(f"{DISEASES_ZH.get(key, key)} {key}", f"{names.get(item.insured_region, item.insured_region)} "
                      f"({item.insured_region})", str(item.patients), str(item.visits), str(item.cross_region),
                      format_yuan(item.total_fen), format_yuan(item.fund_pay_fen), str(item.limits_met))
    table.add_section()
    table.add_row("all", "", str(sum(item.patients for item in visits)), str(sum(item.visits for item in visits)),
                  str(sum(item.cross_region for item in visits)), format_yuan(sum(item.total_fen for item in visits)),
                  format_yuan(sum(item.fund_pay_fen for item in visits)), str(sum(item.limits_met for item in visits)))
    console.print(table)


def write_report(work_dir: Path, result: DemoResult) -> None:
    from services.cli.report import write_markdown, write_chart

    write_markdown(work_dir / "report.md", result)
    write_chart(work_dir / "report.png", result.rows, result.month)


def run(count: int, members: int, concurrency: int, seed: int, insecure: bool = False) -> None:
    exit_on_sigterm()
    try:
        asyncio.run(run_demo(Console(width=None if sys.stdout.isatty() else 110), count, members, concurrency, seed,
                             insecure=insecure))
    except grpc.aio.AioRpcError as error:
        from services.cli.output import fail
        from services.common.status_text import domain_error_from_status

        fail(f"the demo stopped: {domain_error_from_status(error)}; logs are in {DEMO_DIR / 'logs'}")
