"""`clearing-admin discharge run`: feed a running stack — the HIS simulator's hospitals discharge generated patients
(RunDischarges) through the treating agencies, with a progress bar, then a summary of the run by region pair."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import timedelta
from pathlib import Path

import grpc
from clearinghouse.v1 import hospital_pb2, hospital_pb2_grpc
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from clearing.dates import check_month
from clearing.errors import InvalidField
from clearing.money import format_yuan
from services.cli import output
from services.cli.online import describe_error, load_config, operator, region_address

COUNT_MAX = 100_000
CONCURRENCY_MAX = 64
RUN_TIMEOUT_S = 24 * 3600.0


def default_month() -> str:
    """The month before this one (Asia/Shanghai): every stay of it is over, so no discharge lies in the future."""
    from services.common.clock import shanghai_today

    return (shanghai_today().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def check_options(count: int, concurrency: int, month: str | None, seed: int | None) -> tuple[str, int]:
    """The month and seed of the run; a bad option is one error line naming it."""
    if not 1 <= count <= COUNT_MAX:
        raise InvalidField("--count", f"must be between 1 and {COUNT_MAX}")
    if not 1 <= concurrency <= CONCURRENCY_MAX:
        raise InvalidField("--concurrency", f"must be between 1 and {CONCURRENCY_MAX}")
    if seed is not None and not 1 <= seed < 2**63:
        raise InvalidField("--seed", "must be a positive integer")
    return (check_month(month, "--month") if month is not None else default_month(),
            seed if seed is not None else 1 + secrets.randbelow(2**31 - 1))


def run(config_path: Path, count: int, region: str | None, month: str | None, seed: int | None,
        concurrency: int) -> None:
    month, seed = check_options(count, concurrency, month, seed)
    config = load_config(config_path)
    if region is not None:
        region_address(config, region)  # a region of this stack, else one error line naming --region
    identity = operator()  # the HIS simulator's control port serves operators only
    run_id = str(uuid.uuid4())
    console = output.console()
    request = hospital_pb2.RunDischargesRequest(request_id=run_id, count=count, seed=seed, concurrency=concurrency,
                                                month=month, treating_region=region or "")

    async def discharge() -> hospital_pb2.GetSummaryResponse:
        async with config.transport().channel(config.address(config.his_port), identity) as channel:
            hospital = hospital_pb2_grpc.HospitalServiceStub(channel)
            stream = hospital.RunDischarges(request, timeout=RUN_TIMEOUT_S)
            update = await stream.read()  # the HIS's first word: a refused run fails here, before anything is printed
            with Progress(TextColumn("Discharging patients"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(), console=console) as progress:
                task = progress.add_task("discharges", total=count, failed=0)
                while update is not grpc.aio.EOF:
                    progress.update(task, completed=update.done, failed=update.failed)
                    update = await stream.read()
            return await hospital.GetSummary(hospital_pb2.GetSummaryRequest(month=month, run_request_id=run_id),
                                             timeout=60)

    try:
        summary = asyncio.run(discharge())
    except grpc.aio.AioRpcError as error:
        output.fail(describe_error(error, config, config.address(config.his_port), identity))
    show_summary(console, summary, run_id, month, seed, region)


def show_summary(console: Console, summary: hospital_pb2.GetSummaryResponse, run_id: str, month: str, seed: int,
                 region: str | None) -> None:
    from services.common.regions import load_regions

    names = {code: item.name for code, item in load_regions().items()}
    table = output.table(f"Stays of {month} discharged "
                         f"{f'at the hospitals of {region}' if region else 'in every region'}",
                         "treating → insured", "stays", "total ¥", "fund paid ¥", "patient paid ¥",
                         numeric=("stays", "total ¥", "fund paid ¥", "patient paid ¥"))
    for pair in summary.pairs:
        label = f"{names.get(pair.treating_region, pair.treating_region)} {pair.treating_region} → " \
                f"{names.get(pair.insured_region, pair.insured_region)} {pair.insured_region}"
        table.add_row(label + (" (local)" if pair.treating_region == pair.insured_region else ""), str(pair.stays),
                      format_yuan(pair.total_fen), format_yuan(pair.fund_pay_fen), format_yuan(pair.psn_pay_fen))
    table.add_section()
    table.add_row("all pairs", str(sum(p.stays for p in summary.pairs)),
                  format_yuan(sum(p.total_fen for p in summary.pairs)),
                  format_yuan(sum(p.fund_pay_fen for p in summary.pairs)),
                  format_yuan(sum(p.psn_pay_fen for p in summary.pairs)))
    console.print(table)
    settled = sum(p.stays for p in summary.pairs)
    why = " (the HIS simulator's log says why)" if summary.failed else ""
    console.print(f"{settled} settled, {summary.failed} failed{why}; run {run_id}, seed {seed} (the same seed "
                  "discharges the same patients with the same bills again)", soft_wrap=True)
