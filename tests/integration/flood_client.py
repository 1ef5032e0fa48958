"""The flooding hospital of tests/integration/test_flood.py, as a process of its own (a hospital is another machine:
its client-side work must not run on the event loop of the in-process stack it floods).

Runs `--workers` concurrent workers, each sending UploadCharges (one line each, over the given encounters in turn)
as `--hospital` over mutual TLS, one call about every `--period` seconds (jittered, so the calls arrive spread out
like a busy HIS's threads, not in one instant), ignoring every refusal's retry-after, until `--stop-file` exists or
`--calls-max` calls are sent. Prints `flooding` once every worker has made its first call (the test waits for
it), then writes to `--out` a JSON object: the request ids accepted, those refused with RESOURCE_EXHAUSTED, the
first refusals' google.rpc.Status (hex), the number of calls, and any other code it saw (which the test treats as
a failure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import uuid
from pathlib import Path

import grpc
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import treating_agency_pb2_grpc as ta_grpc
from clearinghouse.v1 import types_pb2
from grpc_status import rpc_status

from services.security.identity import hospital
from services.security.party import Transport


async def main(arguments: argparse.Namespace) -> None:
    encounters = arguments.encounters.split(",")
    accepted: list[str] = []
    refused: list[str] = []
    statuses: list[str] = []
    other: list[str] = []
    stop = Path(arguments.stop_file)
    async with Transport.tls(arguments.certs).channel(arguments.address, hospital(arguments.hospital)) as channel:
        treating = ta_grpc.TreatingAgencyServiceStub(channel)
        counter = 0

        async def upload(encounter_id: str, line_id: str) -> None:
            request_id = str(uuid.uuid4())
            try:
                await treating.UploadCharges(ta.UploadChargesRequest(
                    request_id=request_id, encounter_id=encounter_id, lines=[types_pb2.BillLine(
                        line_id=line_id, code=arguments.code, qty="1", unit_price_fen=10_000, amount_fen=10_000,
                        service_date=arguments.day)]), timeout=60)
            except grpc.aio.AioRpcError as error:
                if error.code() is not grpc.StatusCode.RESOURCE_EXHAUSTED:
                    other.append(f"{request_id} {error.code().name}: {error.details()}")
                    return
                refused.append(request_id)
                if len(statuses) < 3:
                    status = rpc_status.from_call(error)
                    statuses.append(status.SerializeToString().hex() if status is not None else "")
            else:
                accepted.append(request_id)

        sent = 0
        first_calls = asyncio.Event()
        started = 0

        async def worker(seed: int) -> None:
            nonlocal sent, counter, started
            jitter = random.Random(seed)
            await asyncio.sleep(jitter.uniform(0, arguments.period))
            first = True
            while not stop.exists() and sent < arguments.calls_max:
                sent += 1
                counter += 1
                await upload(encounters[counter % len(encounters)], f"F{counter}")
                if first:
                    first, started = False, started + 1
                    if started == arguments.workers:
                        first_calls.set()
                await asyncio.sleep(jitter.uniform(0.5, 1.5) * arguments.period)

        workers = [asyncio.create_task(worker(index)) for index in range(arguments.workers)]
        await asyncio.wait_for(first_calls.wait(), 120)
        print("flooding", flush=True)
        await asyncio.gather(*workers)
    Path(arguments.out).write_text(json.dumps({"accepted": accepted, "refused": refused, "statuses": statuses,
                                               "other": other, "calls": sent}), encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("--certs", "--address", "--hospital", "--encounters", "--code", "--day", "--stop-file", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--period", type=float, required=True)
    parser.add_argument("--calls-max", type=int, required=True)
    asyncio.run(main(parser.parse_args()))
