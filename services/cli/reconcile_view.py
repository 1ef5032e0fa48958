"""`clearing-admin reconcile DAY`: reconcile every pair of neighbours for one day — the settlements made that
day (or, `--by discharge`, the stays discharged that day) — and show what was found and repaired. The
hospitals' HIS goes first (with each treating agency, reversing what it never learnt the fate of), then the
clearing house (with the insured agencies), then each treating agency (with the clearing house and its own
insured agency), so a cancel completed downstream is seen upstream in the same run."""

from __future__ import annotations

from pathlib import Path

from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import clearing_house_pb2_grpc, hospital_pb2, hospital_pb2_grpc, treating_agency_pb2_grpc, types_pb2
from clearinghouse.v1 import treating_agency_pb2 as ta
from google.protobuf import json_format
from rich.console import Console
from rich.table import Table

from clearing.dates import parse_day
from clearing.reconcile import DayKey
from services.cli import output
from services.cli.online import call, load_config
from services.common.reconciling import DAY_KEY_NUMBERS
from services.stack.config import StackConfig

RECONCILE_TIMEOUT_S = 300.0


def reconcile(config_path: Path, day: str, grace_s: int,
              by: DayKey = DayKey.SETTLEMENT) -> list[types_pb2.ReconciliationReport]:
    parse_day(day, "DAY")
    key = DAY_KEY_NUMBERS[by]
    config = load_config(config_path)
    reports = list(call(config, config.address(config.his_port), lambda channel: hospital_pb2_grpc
                        .HospitalServiceStub(channel).ReconcileWithAgencies(
                            hospital_pb2.ReconcileWithAgenciesRequest(day=day, pending_grace_s=grace_s, day_key=key),
                            timeout=RECONCILE_TIMEOUT_S)).reports)
    reports += list(call(config, config.address(config.clearing_house_port), lambda channel: clearing_house_pb2_grpc
                        .ClearingHouseServiceStub(channel).ReconcileInsuredAgencies(
                            ch.ReconcileInsuredAgenciesRequest(day=day, pending_grace_s=grace_s, day_key=key),
                            timeout=RECONCILE_TIMEOUT_S)).reports)
    for region in sorted(config.region_ports):
        reports.extend(call(config, region_address(config, region), lambda channel: treating_agency_pb2_grpc
                            .TreatingAgencyServiceStub(channel).Reconcile(
                                ta.ReconcileRequest(day=day, pending_grace_s=grace_s, day_key=key),
                                timeout=RECONCILE_TIMEOUT_S)).reports)
    return reports


def region_address(config: StackConfig, region: str) -> str:
    return config.address(config.region_ports[region])


def unresolved(reports: list[types_pb2.ReconciliationReport]) -> list[types_pb2.Repair]:
    """Differences no rule repaired this run: reported ones, and repairs that failed."""
    return [item for report in reports for item in report.repairs
            if item.action == "report" or (item.action != "wait" and not item.repaired)]


def as_json(reports: list[types_pb2.ReconciliationReport]) -> list[dict]:
    return [json_format.MessageToDict(report, preserving_proto_field_name=True,
                                      always_print_fields_with_no_presence=True) for report in reports]


def show(console: Console, day: str, reports: list[types_pb2.ReconciliationReport],
         by: DayKey = DayKey.SETTLEMENT) -> None:
    what = "settlements made" if by is DayKey.SETTLEMENT else "stays discharged"
    summary = Table(title=f"Reconciliation of {day}, the {what} that day (3201 totals, 3202 detail)")
    for header in ("pair", "settled up", "settled down", "totals", "lines compared", "differences", "repaired"):
        summary.add_column(header, justify="left" if header in ("pair", "totals") else "right")
    for report in reports:
        summary.add_row(report.pair, str(sum(t.settled for t in report.upstream_totals)),
                        str(sum(t.settled for t in report.downstream_totals)),
                        "agree" if report.totals_agreed else "differ", str(report.lines_compared),
                        str(len(report.repairs)), str(sum(item.repaired for item in report.repairs)))
    console.print(summary)
    repairs = [item for report in reports for item in report.repairs]
    if not repairs:
        console.print("No differences.")
        return
    detail = Table(title="Differences and repairs")
    for header in ("settlement", "pair", "upstream", "downstream", "rule", "done", "why"):
        detail.add_column(header)
    for item in repairs:
        detail.add_row(item.key, item.pair, item.upstream_status or "—", item.downstream_status or "—", item.action,
                       "yes" if item.repaired else "no", item.error or item.note)
    console.print(detail)


def run(config_path: Path, day: str, grace_s: int, json_output: bool, by: DayKey = DayKey.SETTLEMENT) -> int:
    """Reconcile, print, and return the exit code: 0 when nothing is left unresolved, 1 otherwise."""
    reports = reconcile(config_path, day, grace_s, by)
    if json_output:
        output.print_json(as_json(reports))
    else:
        show(output.console(), day, reports, by)
    return 1 if unresolved(reports) else 0
