"""End to end across real processes: every party its own process on the embedded Postgres, driven by
the HIS simulator; a client with no proto files settles through reflection (`buf curl`, with a hospital's
certificate: every party speaks mutual TLS); a killed region process restarts and its settlements are still
there."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from datetime import date
from pathlib import Path

import asyncpg
import pytest
from clearinghouse.v1 import hospital_pb2, hospital_pb2_grpc, treating_agency_pb2 as ta, treating_agency_pb2_grpc

from services.common.clock import shanghai_instant
from services.datagen.catalogue import generate_catalogue_rows
from services.security.certs import CertDir
from services.security.identity import Identity, hospital
from services.stack.config import operator_identity
from services.stack.enrol import enrol_all
from services.stack.processes import StackProcesses

pytestmark = pytest.mark.e2e
SEED = 2026
MEMBERS = 20
BUF = Path(sys.executable).parent / "buf"


# The services' clock: September 2026 is settled on its last evening, then the stack lives on 1 October, so
# September is over and can be closed (issue 9 item 3) while every test's stays lie in the past.
CLOSED_MONTH = "2026-09"


@pytest.fixture(scope="module")
async def processes(database):
    # The session's database: its owner (this process) is the one that stops it, however the session ends.
    work_dir = Path(tempfile.mkdtemp(prefix="clearing-e2e-"))
    stack = StackProcesses(work_dir=work_dir, seed=SEED, members_per_region=MEMBERS, database=database,
                           clock_file=work_dir / "clock")
    try:
        await stack.move_clock_to(shanghai_instant(date(2026, 9, 30), hour=20))
        config = await stack.start()
        await enrol_all({region: config.address(port) for region, port in config.region_ports.items()}, SEED, MEMBERS,
                        transport=config.transport())
        await run_discharges(stack, str(uuid.uuid4()), 12, month=CLOSED_MONTH)
        await stack.move_clock_to(shanghai_instant(date(2026, 10, 1), hour=10))
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(stack.work_dir, ignore_errors=True)


async def settled_rows(stack: StackProcesses, run_id: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(stack.config.dsn("his"))
    try:
        return await connection.fetch("SELECT * FROM discharges WHERE run_request_id = $1", uuid.UUID(run_id))
    finally:
        await connection.close()


async def run_discharges(stack: StackProcesses, run_id: str, count: int,
                         month: str = "2026-05") -> hospital_pb2.RunDischargesResponse:
    async with stack.config.transport().channel(stack.config.address(stack.config.his_port),
                                                operator_identity()) as channel:
        updates = [update async for update in hospital_pb2_grpc.HospitalServiceStub(channel).RunDischarges(
            hospital_pb2.RunDischargesRequest(request_id=run_id, count=count, seed=11, concurrency=6,
                                              month=month))]
    return updates[-1]


async def test_discharges_across_processes_then_replay_of_the_run_settles_nothing_twice(processes):
    run_id = str(uuid.uuid4())
    last = await run_discharges(processes, run_id, 30)
    assert last.done == 30
    rows = await settled_rows(processes, run_id)
    settled = [row for row in rows if row["status"] == "settled"]
    for row in rows:
        if row["status"] == "failed":  # only an agreement's refusal is an acceptable failure here
            assert "rejects unmapped lines" in row["error"]
    assert len(settled) >= 25
    for row in settled:
        assert row["fund_pay_fen"] + row["psn_pay_fen"] == row["total_fen"]

    # The same run again re-sends the same request ids: every settlement replays, none is new.
    await run_discharges(processes, run_id, 30)
    connection = await asyncpg.connect(processes.config.dsn("clearinghouse"))
    try:
        cross = [row for row in settled if row["treating_region"] != row["insured_region"]]
        ids = [row["settlement_id"] for row in cross]
        count = await connection.fetchval("SELECT count(*) FROM claims WHERE settlement_id = ANY($1::uuid[])", ids)
        postings = await connection.fetchval(
            "SELECT count(*) FROM ledger_transactions WHERE settlement_id = ANY($1::uuid[])", ids)
    finally:
        await connection.close()
    assert count == len(cross)
    assert postings == len(cross)


def buf_curl(address: str, method: str, body: dict, certs_dir: Path, identity: Identity) -> dict:
    """Call through server reflection with no proto files, as an outside HIS team's tooling would: over mutual TLS,
    trusting the stack's CA and presenting `identity`'s certificate (reflection needs nothing more)."""
    paths = CertDir(certs_dir)
    result = subprocess.run(
        [str(BUF), "curl", "--protocol", "grpc", "--cacert", str(paths.ca_cert), "--cert", str(paths.cert(identity)),
         "--key", str(paths.key(identity)), "--data", json.dumps(body),
         f"https://{address}/clearinghouse.v1.TreatingAgencyService/{method}"],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_a_client_without_proto_files_settles_through_reflection(processes):
    region, insured = "440100", "610924"
    address = processes.config.address(processes.config.region_ports[region])
    row = next(r for r in generate_catalogue_rows(region, SEED)
               if r["grade"] == "A" and r["national_code"] and not r["price_cap_fen"] and not r["restriction"]
               and r["valid_to"] == "" and r["valid_from"] <= "2026-05-01")
    from services.datagen.population import generate_members

    member = generate_members(insured, MEMBERS, SEED)[0]
    certs_dir, as_hospital = Path(processes.config.certs_dir), hospital("H44010000001")  # the hospital settles as itself
    admitted = await asyncio.to_thread(buf_curl, address, "Admit", {
        "request_id": str(uuid.uuid4()), "hospital_code": "H44010000001",
        "patient": {"insured_region": insured, "member_id": member["member_id"], "id_number": member["id_number"],
                    "name": member["name"]},
        "admitted_on": "2026-05-01", "diagnoses": ["I10"]}, certs_dir, as_hospital)
    await asyncio.to_thread(buf_curl, address, "UploadCharges", {
        "request_id": str(uuid.uuid4()), "encounter_id": admitted["encounterId"],
        "lines": [{"line_id": "1", "code": row["local_code"], "qty": "2", "unit_price_fen": "1000000",
                   "amount_fen": "2000000", "service_date": "2026-05-02"}]}, certs_dir, as_hospital)
    settled = await asyncio.to_thread(buf_curl, address, "Settle", {
        "request_id": str(uuid.uuid4()), "encounter_id": admitted["encounterId"], "discharged_on": "2026-05-03"},
        certs_dir, as_hospital)
    split = settled["settlement"]["adjudication"]["split"]
    assert split["totalFen"] == "2000000"  # int64 arrives as a JSON string
    assert int(split["fundPayFen"]) > 0  # 20,000 yuan of grade A is well above any deductible
    assert int(split["fundPayFen"]) + int(split["psnPayFen"]) == 2_000_000
    assert settled["settlement"]["claim"]["insuredRegion"] == insured


async def test_a_killed_region_restarts_with_its_settlements_intact(processes):
    run_id = str(uuid.uuid4())
    await run_discharges(processes, run_id, 10)
    rows = [row for row in await settled_rows(processes, run_id) if row["status"] == "settled"]
    victim = rows[0]["treating_region"]
    await processes.restart(f"region:{victim}")  # SIGKILL, then start again on the same port and database
    async with processes.config.transport().channel(processes.config.address(processes.config.region_ports[victim]),
                                                    operator_identity()) as channel:
        stub = treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel)
        for row in rows:
            if row["treating_region"] != victim:
                continue
            answer = await stub.GetSettlement(ta.GetSettlementRequest(settlement_id=str(row["settlement_id"])),
                                              timeout=10)
            assert answer.settlement.adjudication.split.fund_pay_fen == row["fund_pay_fen"]


async def test_every_process_serves_prometheus_metrics(processes):
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    await run_discharges(processes, str(uuid.uuid4()), 5)
    text = ""
    for role, port in processes.config.metrics_ports.items():
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read())
        assert b"grpc_server_handling_seconds_bucket{" in body, role
        if role.startswith("region:"):
            text += body.decode()
    samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
    assert any(sample.name == "clearing_settlements_total" and sample.labels["party"] == "insured"
               and re.fullmatch("[0-9]{6}", sample.labels["region"]) and sample.labels["kind"] == "adjudication"
               for sample in samples)
    assert any(sample.name == "grpc_client_handled_total" and sample.labels["party"] == "treating"
               and sample.labels["grpc_code"] == "OK" and sample.value > 0 for sample in samples)


def clearing_admin(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "clearing-admin"), *arguments], capture_output=True,
                          text=True, timeout=120, check=False, env=None if env is None else {**os.environ, **env})


async def test_the_cli_calls_as_an_operator_and_says_plainly_when_its_certificate_is_refused(processes):
    """The CLI calls as operator/admin by default, as `--operator NAME` or $CLEARING_OPERATOR otherwise; with an
    expired certificate the handshake fails and the one error line says so, and what is wrong."""
    import datetime as dt

    from services.security import certs
    from services.security.identity import operator

    config = str(processes.config_path)
    directory = Path(processes.config.certs_dir)
    certs.issue(directory, operator("night-shift"))
    certs.issue(directory, operator("expired"), days=1, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    for arguments, env in ((("--operator", "night-shift"), None), ((), {"CLEARING_OPERATOR": "night-shift"})):
        shown = await asyncio.to_thread(clearing_admin, *arguments, "prepayment", "status", "--config", config,
                                        "--json", env=env)
        assert shown.returncode == 0, shown.stderr
    refused = await asyncio.to_thread(clearing_admin, "--operator", "expired", "prepayment", "status", "--config",
                                      config)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "TLS handshake" in refused.stderr, refused.stderr
    assert "operator/expired is expired" in refused.stderr and str(directory) in refused.stderr
    unknown = await asyncio.to_thread(clearing_admin, "--operator", "nobody", "prepayment", "status", "--config",
                                      config)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "operator/nobody" in unknown.stderr


async def test_operators_close_the_month_and_show_the_netting_from_the_cli(processes):
    config = str(processes.config_path)
    month = CLOSED_MONTH
    bad = await asyncio.to_thread(clearing_admin, "month", "close", "2026-13", "--config", config)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "month" in bad.stderr
    closed = await asyncio.to_thread(clearing_admin, "month", "close", month, "--config", config, "--json")
    assert closed.returncode == 0, closed.stderr
    closing = json.loads(closed.stdout)
    assert sum(int(item["net_fen"]) for item in closing["positions"]) == 0
    chart = processes.work_dir / "netting.svg"
    shown = await asyncio.to_thread(clearing_admin, "netting", "show", month, "--config", config, "--chart", str(chart))
    assert shown.returncode == 0, shown.stderr
    assert "Net positions" in shown.stdout and chart.stat().st_size > 0
    again = await asyncio.to_thread(clearing_admin, "month", "close", month, "--config", config, "--json")
    assert json.loads(again.stdout) == closing  # closing twice returns the first result
    current = await asyncio.to_thread(clearing_admin, "month", "close", "2026-10", "--config", config)
    assert current.returncode == 2 and current.stdout == "" and "not over" in current.stderr

    # The month awaits its transfers; confirming each (as the regions pay) settles it.
    status = json.loads((await asyncio.to_thread(clearing_admin, "month", "status", month, "--config", config,
                                                 "--json")).stdout)
    assert status["state"] == "MONTH_STATE_AWAITING_PAYMENT"
    owing = [item for item in status["transfers"] if "transfer" in item]
    wrong = await asyncio.to_thread(clearing_admin, "transfer", "confirm", month, owing[0]["region"], "--amount-fen",
                                    "1", "--config", config)
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1 and "amount_fen" in wrong.stderr
    for item in owing:
        paid = await asyncio.to_thread(clearing_admin, "transfer", "confirm", month, item["region"], "--amount-fen",
                                       item["transfer"]["amount_fen"], "--reference", "BANK-1", "--config", config)
        assert paid.returncode == 0, paid.stderr
    status = json.loads((await asyncio.to_thread(clearing_admin, "month", "status", month, "--config", config,
                                                 "--json")).stdout)
    assert status["state"] == "MONTH_STATE_SETTLED"
    missing = await asyncio.to_thread(clearing_admin, "netting", "show", "1999-01", "--config", config)
    assert missing.returncode == 2 and "NOT_FOUND" in missing.stderr


async def test_operators_see_and_top_up_prepayments_from_the_cli(processes):
    config = str(processes.config_path)

    async def balance() -> int:
        status = await asyncio.to_thread(clearing_admin, "prepayment", "status", "--config", config, "--json")
        assert status.returncode == 0, status.stderr
        by_region = {item["insured_region"]: item for item in json.loads(status.stdout)}
        assert int(by_region.get("440100", {}).get("required_fen", 1)) > 0
        return int(by_region.get("440100", {}).get("balance_fen", 0))

    before = await balance()
    topped = await asyncio.to_thread(clearing_admin, "prepayment", "topup", "--region", "440100", "--amount-fen",
                                     "100000000", "--config", config)
    assert topped.returncode == 0, topped.stderr
    assert await balance() == before + 100_000_000
    bad = await asyncio.to_thread(clearing_admin, "prepayment", "topup", "--region", "999998", "--amount-fen", "5",
                                  "--config", config)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "999998" in bad.stderr


async def test_operators_translate_look_up_explain_and_import_from_the_cli(processes, tmp_path):
    config = str(processes.config_path)
    run_id = str(uuid.uuid4())
    await run_discharges(processes, run_id, 4)
    row = next(r for r in await settled_rows(processes, run_id) if r["status"] == "settled")
    region, settlement_id = row["treating_region"], str(row["settlement_id"])

    shown = await asyncio.to_thread(clearing_admin, "settlement", "show", settlement_id, "--region", region,
                                    "--config", config, "--json")
    assert shown.returncode == 0, shown.stderr
    split = json.loads(shown.stdout)["adjudication"]["split"]
    assert int(split.get("fund_pay_fen", 0)) == row["fund_pay_fen"]
    for language, marker in (("zh", "个人支付"), ("en", "the patient pays")):
        explained = await asyncio.to_thread(clearing_admin, "settlement", "explain", settlement_id, "--region",
                                            region, "--lang", language, "--config", config)
        assert explained.returncode == 0, explained.stderr
        assert marker in explained.stdout
    unknown = await asyncio.to_thread(clearing_admin, "settlement", "show", str(uuid.uuid4()), "--region", region,
                                      "--config", config)
    assert unknown.returncode == 2 and "NOT_FOUND" in unknown.stderr and unknown.stdout == ""

    rows = generate_catalogue_rows("440100", SEED)
    mapped = next(r for r in rows if r["national_code"] and r["valid_to"] == "" and r["valid_from"] <= "2026-05-01")
    translated = await asyncio.to_thread(clearing_admin, "translate", "440100", mapped["local_code"], "--to",
                                         "430100", "--on", "2026-05-01", "--config", config)
    assert translated.returncode == 0, translated.stderr
    answer = json.loads(translated.stdout)
    assert answer["national_code"] == mapped["national_code"]
    assert answer["mapped"] is (len(answer["targets"]) > 0)  # never a silent pass-through
    garbage = await asyncio.to_thread(clearing_admin, "translate", "44010", "X", "--config", config)
    assert garbage.returncode == 2 and "from_region" in garbage.stderr

    from services.stack.enrol import catalogue_csv_text

    catalogue = tmp_path / "440100.csv"
    catalogue.write_text(catalogue_csv_text("440100", SEED), encoding="utf-8")
    imported = await asyncio.to_thread(clearing_admin, "catalog", "import", str(catalogue), "--region", "440100",
                                       "--config", config)
    assert imported.returncode == 0, imported.stderr
    assert "version 1" in imported.stdout  # the same file as the stack's import keeps its version
    broken = tmp_path / "broken.csv"
    broken.write_text(catalogue.read_text(encoding="utf-8").replace(",A,", ",Z,", 1), encoding="utf-8")
    refused = await asyncio.to_thread(clearing_admin, "catalog", "import", str(broken), "--region", "440100",
                                      "--config", config)
    assert refused.returncode == 2 and ".grade" in refused.stderr


async def test_operators_print_a_statement_as_json_and_csv(processes, tmp_path):
    import csv

    config = str(processes.config_path)
    month = CLOSED_MONTH  # the fixture settled stays in it
    closed = await asyncio.to_thread(clearing_admin, "month", "close", month, "--config", config, "--json")
    assert closed.returncode == 0, closed.stderr
    positions = {item["region"]: int(item["net_fen"]) for item in json.loads(closed.stdout)["positions"]}
    region = sorted(positions)[0]
    csv_path = tmp_path / "statement.csv"
    shown = await asyncio.to_thread(clearing_admin, "statement", "show", region, month, "--config", config,
                                    "--json", "--csv", str(csv_path))
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert int(document["summary"]["net_fen"]) == positions[region]
    with csv_path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(document["entries"])
    sign = {"settlement": 1, "cancel": -1, "reversal": -1}
    owed_by = sum(sign[r["kind"]] * int(r["fund_pay_fen"]) for r in rows if r["insured_region"] == region)
    assert owed_by == int(document["summary"]["owed_by_fen"])
    refused = await asyncio.to_thread(clearing_admin, "statement", "show", region, "2099-01", "--config", config)
    assert refused.returncode == 2 and "not closed" in refused.stderr
    payouts = await asyncio.to_thread(clearing_admin, "statement", "payouts", region, month, "--config", config)
    assert payouts.returncode == 0, payouts.stderr
    assert "Payouts" in payouts.stdout and f"H{region}" in payouts.stdout


async def test_operators_close_a_payout_month_from_the_cli(processes):
    """`statement payouts` says whether the month is closed; `payouts close` freezes it, and refuses a month that
    is not over or not a month with one error line naming the field (exit 2)."""
    config = str(processes.config_path)
    region, month = "440100", CLOSED_MONTH  # the fixture settled stays in it; the clock is on 1 October
    listed = await asyncio.to_thread(clearing_admin, "statement", "payouts", region, month, "--config", config,
                                     "--json")
    assert listed.returncode == 0, listed.stderr
    running = json.loads(listed.stdout)
    assert (running["month"], running["closed"]) == (month, False) and running["payouts"]
    for arguments, field in (((region, "2026-13"), "month"), ((region, "2026-10"), "month"),
                             (("44010", month), "REGION")):
        refused = await asyncio.to_thread(clearing_admin, "payouts", "close", *arguments, "--config", config)
        assert refused.returncode == 2 and refused.stdout == "", refused
        assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("error: ") and field in refused.stderr
    closed = await asyncio.to_thread(clearing_admin, "payouts", "close", region, month, "--config", config, "--json")
    assert closed.returncode == 0, closed.stderr
    frozen = json.loads(closed.stdout)
    assert frozen["closed"] and frozen["closed_at"].startswith("2026-10-01")
    assert (frozen["payouts"], frozen["total_fen"]) == (running["payouts"], running["total_fen"])
    again = await asyncio.to_thread(clearing_admin, "payouts", "close", region, month, "--config", config, "--json")
    assert again.returncode == 0 and json.loads(again.stdout) == frozen, "closing twice shows the first result"
    shown = await asyncio.to_thread(clearing_admin, "statement", "payouts", region, month, "--config", config)
    assert shown.returncode == 0, shown.stderr
    assert f"{month}: closed 2026-10-01" in shown.stdout and "frozen" in shown.stdout
    current = await asyncio.to_thread(clearing_admin, "statement", "payouts", region, "2026-10", "--config", config)
    assert current.returncode == 0 and "2026-10: open" in current.stdout


def settled_by_hospitals(reports: list[dict]) -> int:
    return sum(total.get("settled", 0) for report in reports if report["pair"].startswith("hospitals")
               for total in report["upstream_totals"])


async def test_operators_reconcile_a_day_from_the_cli(processes):
    """A day is the settlements made that day: stays of August settled on a day of this test's own (the services'
    clock moved there) are reconciled on it, with every party's view of them; their discharge day only on request."""
    config = str(processes.config_path)
    day = "2026-10-12"  # no other test of the module settles on it
    await processes.move_clock_to(shanghai_instant(date.fromisoformat(day), hour=10))
    try:
        run_id = str(uuid.uuid4())
        await run_discharges(processes, run_id, 4, month="2026-08")
    finally:
        await processes.move_clock_to(shanghai_instant(date(2026, 10, 1), hour=10))
    rows = await settled_rows(processes, run_id)
    assert {row["settlement_day"].isoformat() for row in rows} == {day}, "the HIS keeps the day the answer named"
    settled = sum(row["status"] == "settled" for row in rows)
    reconciled = await asyncio.to_thread(clearing_admin, "reconcile", day, "--config", config, "--json")
    assert reconciled.returncode == 0, reconciled.stderr
    reports = json.loads(reconciled.stdout)
    pairs = {report["pair"] for report in reports}
    assert {f"clearing_house<->insured_agency:{region}" for region in processes.config.region_ports} <= pairs
    assert {f"treating_agency:{region}<->clearing_house" for region in processes.config.region_ports} <= pairs
    assert {f"hospitals<->treating_agency:{region}" for region in processes.config.region_ports} <= pairs
    assert all(report["repairs"] == [] for report in reports), "nothing to repair after a clean run"
    assert {report["day_key"] for report in reports} == {"DAY_KEY_SETTLEMENT"}
    assert settled_by_hospitals(reports) == settled > 0, "the day has this test's settlements, and only those"
    discharged = min(row["discharged_on"] for row in rows).isoformat()
    by_discharge = await asyncio.to_thread(clearing_admin, "reconcile", discharged, "--by", "discharge", "--config",
                                           config, "--json")
    assert by_discharge.returncode == 0, by_discharge.stderr
    assert {report["day_key"] for report in json.loads(by_discharge.stdout)} == {"DAY_KEY_DISCHARGE"}
    assert settled_by_hospitals(json.loads(by_discharge.stdout)) > 0, "by discharge day, on request"
    shown = await asyncio.to_thread(clearing_admin, "reconcile", day, "--config", config)
    assert shown.returncode == 0 and "No differences." in shown.stdout and "settlements made" in shown.stdout
    bad = await asyncio.to_thread(clearing_admin, "reconcile", "2026-02-30", "--config", config)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "DAY" in bad.stderr


async def test_operators_print_the_year_summary_from_the_cli(processes):
    config = str(processes.config_path)
    month = CLOSED_MONTH  # the fixture settled stays in it
    closed = await asyncio.to_thread(clearing_admin, "month", "close", month, "--config", config, "--json")
    assert closed.returncode == 0, closed.stderr
    positions = {item["region"]: int(item["net_fen"]) for item in json.loads(closed.stdout)["positions"]}
    region = sorted(positions)[0]
    as_json = await asyncio.to_thread(clearing_admin, "statement", "year", region, month[:4], "--config", config,
                                      "--json")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    by_month = {item["month"]: item for item in document["months"]}
    assert int(by_month[month]["net_fen"]) == positions[region]
    assert int(document["totals"]["net_fen"]) == sum(int(item["net_fen"]) for item in document["months"])
    assert month not in document["open_months"]
    shown = await asyncio.to_thread(clearing_admin, "statement", "year", region, month[:4], "--config", config)
    assert shown.returncode == 0, shown.stderr
    assert "年度清算" in shown.stdout and month in shown.stdout
    bad = await asyncio.to_thread(clearing_admin, "statement", "year", region, "26", "--config", config)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "year" in bad.stderr


def one_error_line(result: subprocess.CompletedProcess, *names: str) -> None:
    """An operator error: exit 2, nothing on stdout, one `error: …` line on stderr naming each of `names`."""
    assert result.returncode == 2, result
    assert result.stdout == "", result.stdout
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for name in names:
        assert name in result.stderr, (name, result.stderr)


async def test_operators_feed_the_running_stack_with_discharge_run(processes):
    """`discharge run` settles N discharges in the running stack through the HIS simulator, only at the hospitals
    of --region when given, with a progress bar and a summary of the run; a bad option is one error line."""
    import re

    config = str(processes.config_path)
    ran = await asyncio.to_thread(clearing_admin, "discharge", "run", "--count", "6", "--region", "440100", "--month",
                                  "2026-06", "--seed", "5", "--concurrency", "3", "--config", config)
    assert ran.returncode == 0, ran.stderr
    assert "Discharging patients" in ran.stdout and "6/6" in ran.stdout, "the progress bar, finished"
    assert "all pairs" in ran.stdout and "hospitals of 440100" in ran.stdout, "the summary table"
    run_id = re.search(r"run ([0-9a-f-]{36}), seed 5", ran.stdout).group(1)
    rows = await settled_rows(processes, run_id)
    assert len(rows) == 6 and {row["treating_region"] for row in rows} == {"440100"}
    assert {row["month"] for row in rows} == {"2026-06"}
    settled = [row for row in rows if row["status"] == "settled"]
    assert settled and f"{len(settled)} settled, {6 - len(settled)} failed" in ran.stdout
    assert any(row["insured_region"] != "440100" for row in settled), "patients insured elsewhere too"

    for arguments, name in ((("--count", "0"), "--count"), (("--count", "2", "--concurrency", "65"), "--concurrency"),
                            (("--count", "x"), "--count"), (("--count", "2", "--region", "999999"), "--region"),
                            (("--count", "2", "--region", "4401"), "--region"),
                            (("--count", "2", "--month", "2026-13"), "--month"),
                            (("--count", "2", "--month", "2099-01"), "month"),  # refused by the HIS: not begun
                            (("--count", "2", "--seed", "-1"), "--seed")):
        one_error_line(await asyncio.to_thread(clearing_admin, "discharge", "run", *arguments, "--config", config),
                       name)


async def test_settlement_show_and_explain_find_the_region_and_print_words(processes):
    """Without --region: a cross-region settlement is found through the clearing house (GetClaim names its treating
    region), a local one by asking each region; statuses and catalogue rules are words, not proto enum names."""
    config = str(processes.config_path)
    run_id = str(uuid.uuid4())
    await run_discharges(processes, run_id, 12)  # seed 11: discharges 0 (430100→440100) and 3 (440100 local)
    settled = [row for row in await settled_rows(processes, run_id) if row["status"] == "settled"]
    cross = next(row for row in settled if row["treating_region"] != row["insured_region"])
    local = next(row for row in settled if row["treating_region"] == row["insured_region"])
    rules = {"CATALOGUE_RULE_TREATING": "treating catalogue", "CATALOGUE_RULE_INSURED": "insured catalogue"}
    for row, how in ((cross, "named by the clearing house"), (local, "found by asking each region")):
        settlement_id = str(row["settlement_id"])
        shown = await asyncio.to_thread(clearing_admin, "settlement", "show", settlement_id, "--config", config)
        assert shown.returncode == 0, shown.stderr
        assert f"treating region {row['treating_region']}, {how}" in shown.stdout
        as_json = await asyncio.to_thread(clearing_admin, "settlement", "show", settlement_id, "--config", config,
                                          "--json")
        assert as_json.returncode == 0, as_json.stderr
        document = json.loads(as_json.stdout)  # JSON stays the proto mapping: machine-readable enum names
        assert document["status"] == "SETTLEMENT_STATUS_SETTLED"
        assert document["claim"]["treating_region"] == row["treating_region"]
        assert f"  settled  {'local' if row is local else 'cross-region'}  {rules[document['catalogue_rule']]}" \
            in shown.stdout
        assert "SETTLEMENT_STATUS" not in shown.stdout and "CATALOGUE_RULE" not in shown.stdout
        assert "smart audit (treating agency): " in shown.stdout  # the 事中 audit recorded with it (warn findings, versions)
        explained = await asyncio.to_thread(clearing_admin, "settlement", "explain", settlement_id, "--lang", "en",
                                            "--config", config)
        assert explained.returncode == 0, explained.stderr
        assert "the patient pays" in explained.stdout and row["treating_region"] in explained.stdout
        assert "smart audit (treating agency): " in explained.stdout
    one_error_line(await asyncio.to_thread(clearing_admin, "settlement", "show", str(uuid.uuid4()), "--config", config),
                   "NOT_FOUND", "SETTLEMENT_ID")
    one_error_line(await asyncio.to_thread(clearing_admin, "settlement", "explain", "not-a-uuid", "--config", config),
                   "settlement_id")


async def test_unknown_regions_are_refused_with_one_error_line(processes):
    """A region that is not part of the stack is refused (exit 2, one line naming it), never an empty answer."""
    config = str(processes.config_path)
    closed = await asyncio.to_thread(clearing_admin, "month", "close", CLOSED_MONTH, "--config", config, "--json")
    assert closed.returncode == 0, closed.stderr  # (closing twice changes nothing)
    for arguments, name in ((("statement", "show", "999999", CLOSED_MONTH), "REGION"),
                            (("statement", "year", "999999", CLOSED_MONTH[:4]), "REGION"),
                            (("prepayment", "status", "--region", "999999"), "--region")):
        one_error_line(await asyncio.to_thread(clearing_admin, *arguments, "--config", config), name, "999999")
