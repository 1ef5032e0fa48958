"""The flooding hospital of tests/integration/test_flood.py, as a process of its own (a hospital is another machine:
its client-side work must not run on the event loop of the in-process stack it floods).

Sends waves of `--wave` concurrent UploadCharges (one line each, over the given encounters in turn) as `--hospital`
over mutual TLS, one wave every `--interval` seconds, until `--stop-file` exists or `--waves-max` waves are sent.
Prints `wave N` after each wave (the test waits for the first), then writes to `--out` a JSON object: the request
ids accepted, those refused with RESOURCE_EXHAUSTED, the first refusals' google.rpc.Status (hex), the number of
waves, and any other code it saw (which the test treats as a failure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
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

        waves = 0
        while not stop.exists() and waves < arguments.waves_max:
            started = time.perf_counter()
            calls = []
            for _ in range(arguments.wave):
                counter += 1
                calls.append(upload(encounters[counter % len(encounters)], f"F{counter}"))
            await asyncio.gather(*calls)
            waves += 1
            print(f"wave {waves}", flush=True)
            await asyncio.sleep(max(0.0, arguments.interval - (time.perf_counter() - started)))
    Path(arguments.out).write_text(json.dumps({"accepted": accepted, "refused": refused, "statuses": statuses,
                                               "other": other, "waves": waves}), encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("--certs", "--address", "--hospital", "--encounters", "--code", "--day", "--stop-file", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--wave", type=int, required=True)
    parser.add_argument("--interval", type=float, required=True)
    parser.add_argument("--waves-max", type=int, required=True)
    asyncio.run(main(parser.parse_args()))
