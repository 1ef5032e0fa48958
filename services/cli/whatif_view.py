"""`clearing-admin policy whatif` (SPEC §12.5): replay a region's settlements under a draft policy and report.

The settlements come from the running stack (the insured agency's ExportAdjudications, operators only); the
replay is the pure core's (`clearing/whatif.py`), here, on the operator's machine. What is read: every settlement
of the policy years the months fall in (a March stay's ratios depend on January's), in the agency's recording
order; what is reported: the standing settlements discharged in the months. Nothing is written anywhere.

Choices, documented for the reader of a report:
* the draft is applied as if in force from the start of the first year read (its `effective_from` is ignored:
  a draft is usually dated in the future), to the earlier months of the year too, so the accumulators at FROM
  are the draft's own;
* the baseline is the replay under the versions actually used (each settlement's recorded
  `policy_effective_from`, from the region's policy files); it must reproduce every recorded split (the
  self-check). A failed self-check prints the report, then `error: self-check failed …` and exits 1: the
  figures are then not to be trusted.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import grpc
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import insured_agency_pb2_grpc
from rich.console import Console

from clearing.bill import check_region
from clearing.dates import check_month
from clearing.errors import DomainError, InvalidField
from clearing.member import Member
from clearing.money import format_yuan
from clearing.policy import Policy, PolicyBook, parse_policy
from clearing.quote import SPLIT_KEYS
from clearing.whatif import (FUNDS, Mismatch, Recorded, Replayed, Totals, WhatIf, as_draft, compare, condensed,
                             policy_years, replay, self_check)
from services.cli import online, output
from services.cli.offline import blamed_on, read_text
from services.common import convert
from services.common.regions import load_policy_book
from services.stack.config import StackConfig

EXPORT_TIMEOUT_S = 600.0
MISMATCHES_SHOWN = 5


def parse_months(text: str) -> tuple[str, str]:
    """`FROM..TO` (or one month) → (FROM, TO), both YYYY-MM, FROM not after TO."""
    parts = text.split("..")
    if len(parts) > 2:
        raise InvalidField("--months", "must be FROM..TO, e.g. 2026-01..2026-03")
    first = check_month(parts[0], "--months")
    last = check_month(parts[-1], "--months")
    if last < first:
        raise InvalidField("--months", f"{last} is before {first}")
    if int(last[:4]) - int(first[:4]) > 1:
        raise InvalidField("--months", "at most two policy years at once")
    return first, last


def load_draft(path: Path, region: str) -> Policy:
    """The draft policy file, validated as any policy file (errors name the key), and of `region`."""
    text = read_text(path, "--policy")
    with blamed_on(f"--policy {path}"):
        draft = parse_policy(text)
    if draft.region != region:
        raise InvalidField("--policy", f"{path}: region is {draft.region}, not {region}")
    return draft


def export(config: StackConfig, address: str, months: tuple[str, str]) -> list[ia.ExportedAdjudication]:
    """Every settlement of the insured agency at `address` for stays discharged in `months`, in recording order."""

    async def read(channel: grpc.aio.Channel) -> list[ia.ExportedAdjudication]:
        stub = insured_agency_pb2_grpc.InsuredAgencyServiceStub(channel)
        found: list[ia.ExportedAdjudication] = []
        async for page in stub.ExportAdjudications(ia.ExportAdjudicationsRequest(
                from_month=months[0], to_month=months[1]), timeout=EXPORT_TIMEOUT_S):
            found.extend(page.settlements)
        return found

    return online.call(config, address, read)


def recorded_of(item: ia.ExportedAdjudication, region: str) -> tuple[Recorded, date]:
    """The core's view of an exported settlement, its lines condensed; and the policy version it used."""
    claim = item.claim
    member = Member(region, item.member.member_id, convert.from_enum(convert.SCHEMES, item.member.scheme, "scheme"),
                    item.member.retired, item.member.poverty,
                    convert.from_enum(convert.TIERS, item.member.assistance, "assistance"),
                    convert.from_enum(convert.FILINGS, item.filing, "filing"))
    stay, _ = convert.stay_from_proto(claim.stay, claim.treating_region)
    split = item.adjudication.split
    recorded = Recorded(item.settlement_id, member, stay, condensed(convert.claim_lines(claim)), item.sequence,
                        item.undone_sequence or None, {key: getattr(split, key) for key in SPLIT_KEYS},
                        convert.ytd_from_proto(item.adjudication.ytd_before))
    return recorded, date.fromisoformat(item.adjudication.policy_effective_from)


def in_force(book: PolicyBook, used: dict[str, date]):  # noqa: ANN201 - the baseline's policy_for
    """Each settlement's recorded policy version, from the region's policy files."""
    versions = {policy.effective_from: policy for policy in book.versions}

    def policy_for(item: Recorded) -> Policy:
        found = versions.get(used[item.settlement_id])
        if found is None:
            raise InvalidField("policy_effective_from", f"settlement {item.settlement_id} was adjudicated under the "
                               f"version of {used[item.settlement_id]}, which the region's policy files lack")
        return found

    return policy_for


def run(config_path: Path, region: str, draft_path: Path, months_text: str, out_dir: Path | None,
        as_json: bool) -> int:
    """The command: the exit code (0, or 1 when the self-check failed)."""
    check_region(region, "REGION")
    config = online.load_config(config_path)
    address = online.region_address(config, region, "REGION")  # a region of the running stack
    months = parse_months(months_text)
    draft = load_draft(draft_path, region)
    book = load_policy_book(region)
    exported = export(config, address, policy_years(months))
    settlements, used = [], {}
    for item in exported:
        recorded, effective_from = recorded_of(item, region)
        settlements.append(recorded)
        used[recorded.settlement_id] = effective_from
    baseline = replay(settlements, in_force(book, used))
    mismatches = self_check(baseline)
    first_day = date(int(policy_years(months)[0][:4]), 1, 1)
    applied = as_draft(draft, first_day)
    try:
        drafted = replay(settlements, lambda item: applied)
    except DomainError as error:
        raise InvalidField("--policy", f"the draft cannot settle a recorded stay: {error.message}") from None
    report = compare(baseline, drafted, months)
    data = report_json(region, draft_path, report, mismatches, len(baseline))
    if out_dir is not None:
        write_outputs(out_dir, region, report, data)
    if as_json:
        output.print_json(data)
    else:
        show(output.console(), region, draft, report, mismatches, baseline)
        if out_dir is not None:
            print(f"chart: {chart_path(out_dir, region, months)}")
    if mismatches:
        first = mismatches[0]
        print(f"error: self-check failed: {len(mismatches)} of {len(baseline)} settlements replay differently "
              f"under the policy in force (first: {first.settlement_id} {first.field} recorded {first.recorded_fen}, "
              f"replayed {first.replayed_fen})", file=sys.stderr, flush=True)
        return 1
    return 0


# ---- output ------------------------------------------------------------------------------------------------

LABELS = {"basic": "basic 统筹", "critical": "critical 大病", "assistance": "assistance 救助",
          "fund_pay_fen": "fund pay", "psn_pay_fen": "own share 个人负担", "total_fen": "total"}


def rows_of(totals: Totals, keys: list[str]) -> list[tuple[str, int, int, int]]:
    return [(key, totals.baseline.get(key, 0), totals.draft.get(key, 0), totals.change(key)) for key in keys]


def band_keys(totals: Totals) -> list[str]:
    keys = sorted({key for key in totals.baseline | totals.draft if key.startswith("band ")},
                  key=lambda key: int(key.split()[1]))
    return keys + ["annual cap"]


def signed(amount_fen: int) -> str:
    return ("+" if amount_fen > 0 else "") + format_yuan(amount_fen)


def show(console: Console, region: str, draft: Policy, report: WhatIf, mismatches: list[Mismatch],
         baseline: dict[str, Replayed]) -> None:
    months = f"{report.months[0]}..{report.months[1]}"
    console.print(f"Policy what-if for {region}, stays discharged {months}: {report.settlements:,} settlements "
                  f"reported, {report.replayed:,} replayed (the whole policy years, cancelled and reversed ones "
                  f"included); draft {draft.name} (effective_from {draft.effective_from}, applied to every stay)")
    console.print("self-check (replay under the policy in force reproduces every split): "
                  + ("passed" if not mismatches else f"FAILED for {len(mismatches)} settlements"))
    for item in mismatches[:MISMATCHES_SHOWN]:
        console.print(f"  {item.settlement_id}: {item.field} recorded {item.recorded_fen}, replayed "
                      f"{item.replayed_fen}")
    funds = output.table("Fund pay by fund, ¥", "fund", "in force", "draft", "change", numeric=("in force", "draft",
                                                                                                "change"))
    for key, before, after, change in rows_of(report.by_fund, [name for name, _ in FUNDS]
                                              + ["fund_pay_fen", "psn_pay_fen"]):
        funds.add_row(LABELS[key], format_yuan(before), format_yuan(after), signed(change))
    console.print(funds)
    schemes = output.table("By scheme, ¥", "scheme", "settlements", "fund pay in force", "draft", "change",
                           "own share change", numeric=("settlements", "fund pay in force", "draft", "change",
                                                        "own share change"))
    for name, totals in report.by_scheme.items():
        schemes.add_row(name, f"{totals.settlements:,}", format_yuan(totals.baseline.get("fund_pay_fen", 0)),
                        format_yuan(totals.draft.get("fund_pay_fen", 0)), signed(totals.change("fund_pay_fen")),
                        signed(totals.change("psn_pay_fen")))
    console.print(schemes)
    bands = output.table("Basic fund by band (分段; the cap row is what the annual cap took off), ¥", "band",
                         "in force", "draft", "change", numeric=("in force", "draft", "change"))
    for key, before, after, change in rows_of(report.by_band, band_keys(report.by_band)):
        bands.add_row(key, format_yuan(before), format_yuan(after), signed(change))
    console.print(bands)
    for title, members in (("Own share rises most", report.rises), ("Own share falls most", report.falls)):
        table = output.table(f"{title} (members)", "member", "settlements", "in force", "draft", "change",
                             numeric=("settlements", "in force", "draft", "change"))
        for item in members:
            table.add_row(item.member_id, str(item.settlements), format_yuan(item.baseline_psn_fen),
                          format_yuan(item.draft_psn_fen), signed(item.change_fen))
        console.print(table if members else f"{title}: none")


def report_json(region: str, draft_path: Path, report: WhatIf, mismatches: list[Mismatch],
                replayed: int) -> dict[str, Any]:
    def totals(item: Totals) -> dict[str, Any]:
        keys = sorted(item.baseline | item.draft)
        return {"settlements": item.settlements, "in_force_fen": {k: item.baseline.get(k, 0) for k in keys},
                "draft_fen": {k: item.draft.get(k, 0) for k in keys}, "change_fen": {k: item.change(k) for k in keys}}

    return {
        "region": region, "draft": str(draft_path), "months": list(report.months),
        "settlements": report.settlements, "replayed": replayed,
        "self_check": {"passed": not mismatches, "mismatches": [asdict(item) for item in mismatches]},
        "by_fund": totals(report.by_fund),
        "by_scheme": {name: totals(item) for name, item in report.by_scheme.items()},
        "by_band": totals(report.by_band),
        "members_rising": [member_json(item) for item in report.rises],
        "members_falling": [member_json(item) for item in report.falls],
    }


def member_json(item) -> dict[str, Any]:  # noqa: ANN001 - a MemberChange
    return {"member_id": item.member_id, "settlements": item.settlements, "in_force_psn_fen": item.baseline_psn_fen,
            "draft_psn_fen": item.draft_psn_fen, "change_fen": item.change_fen}


def chart_path(out_dir: Path, region: str, months: tuple[str, str]) -> Path:
    return out_dir / f"whatif-{region}-{months[0]}-{months[1]}.png"


def write_outputs(out_dir: Path, region: str, report: WhatIf, data: dict[str, Any]) -> None:
    """The chart (PNG) and the report (JSON) into `out_dir`."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = chart_path(out_dir, region, report.months)
        write_chart(path, region, report)
        path.with_suffix(".json").write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        raise InvalidField("--out", f"{out_dir}: cannot write: {error.strerror or error}") from None


def write_chart(path: Path, region: str, report: WhatIf) -> None:
    """Three panels of the change in yuan: by fund, by scheme, by band (ASCII labels: no CJK font needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("by fund", [(name, report.by_fund.change(name)) for name, _ in FUNDS]
         + [("own share", report.by_fund.change("psn_pay_fen"))]),
        ("by scheme (fund pay)", [(name, item.change("fund_pay_fen")) for name, item in report.by_scheme.items()]),
        ("by band (basic fund)", [(key, report.by_band.change(key)) for key in band_keys(report.by_band)]),
    ]
    figure, axes = plt.subplots(1, 3, figsize=(13, 4.5))
    for axis, (title, items) in zip(axes, panels):
        labels = [label for label, _ in items]
        values = [amount_fen / 100 for _, amount_fen in items]  # yuan, for display only
        axis.bar(labels, values, color=["tab:red" if value > 0 else "tab:green" for value in values])
        axis.axhline(0, color="black", linewidth=0.8)
        axis.set_title(title)
        axis.set_ylabel("change, yuan (draft - in force)")
        axis.tick_params(axis="x", labelrotation=20)
    figure.suptitle(f"Policy what-if, region {region}, discharged {report.months[0]}..{report.months[1]} "
                    f"({report.settlements} settlements)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
