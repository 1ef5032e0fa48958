"""The load generator: many concurrent HIS clients in one process, discharging straight at the treating agencies.

Each client is a hospital's HIS: it dials its region's treating agency with that hospital's certificate (one
channel per hospital, as the HIS simulator does) and discharges a patient as services/his/servicer.py does —
Admit (2201), UploadCharges in batches of 25 lines (2301), Settle (2304) — retrying a call that times out, finds
the agency unavailable, aborted or throttled with the same request id (safe: every step is idempotent on it).
The HIS simulator's RunDischarges is not used because only the HIS sees how long each Settle took.

Two ways to offer load, each for a window given in `time.monotonic()` seconds (CLOCK_MONOTONIC: one clock for
every process of the machine, so the harness and its generators agree on the window):

* **open loop** (`open`): discharges start on a fixed schedule, `rate_per_s` per second however many are still
  running — the offered rate does not fall when the stack slows down, as it would with clients waiting on their
  answers — up to `in_flight_max` at once: a start beyond it is dropped and counted (a stack slower than the
  offered rate would otherwise drown in its own backlog, every call timing out and retried). A start more than
  LATE_START_MS after its time means the generator itself fell behind; the count says whether the offered rate
  was really offered.
* **closed loop** (`saturation`): `clients` clients each discharge back to back, so the stack always has that many
  discharges in flight: its throughput at saturation.

A discharge counts in a window when its Settle ends in it (settled, refused, or failed after retries); latencies
are of those Settles. Discharges still running when the window ends are given DRAIN_S to finish, uncounted, and
are then cancelled (`unfinished`).

Run as `python -m services.loadtest.driver`: JSON commands on stdin, one per line, JSON answers on stdout
(`services/loadtest/fleet.py` is the other end); anything else the process prints goes to stderr.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import grpc
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import treating_agency_pb2_grpc

from services.common.logs import mask_id_number
from services.common.regions import load_regions
from services.loadtest.bills import Template, make_templates
from services.security.identity import hospital
from services.loadtest.transport import transport_for
from services.security.party import Transport

RETRY_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED,
                         grpc.StatusCode.RESOURCE_EXHAUSTED})
RETRIES_MAX = 5
RETRY_BACKOFF_S = 0.05
CALL_TIMEOUT_S = 10.0
LATE_START_MS = 50.0
# How long a phase waits, after its window, for the discharges still running, then cancels them: they no longer
# count, and at saturation a full in-flight cap takes many seconds to finish (the next phase has its own warm-up).
DRAIN_S = 3.0
ERROR_SAMPLES_MAX = 3  # refusal texts kept per code, for the report (ID numbers masked)


@dataclass
class Outcome:
    """One discharge as the HIS saw it."""

    kind: str  # "settled", "refused" (a definite answer to Settle), "failed" (no definite answer, or admit/upload)
    step: str  # the last step tried: admit, upload, settle
    code: str = "OK"
    message: str = ""
    finished_at: float = 0.0  # monotonic
    settle_ms: float | None = None
    discharge_ms: float | None = None
    step_ms: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Tally:
    """What one generator saw in one window."""

    measure_from: float
    measure_to: float
    settled: int = 0
    refused: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    errors: dict[str, list[str]] = field(default_factory=dict)
    settle_ms: list[float] = field(default_factory=list)
    discharge_ms: list[float] = field(default_factory=list)
    step_ms: dict[str, list[float]] = field(default_factory=dict)
    lines: int = 0
    cross_region: int = 0
    offered: int = 0  # open loop: discharges scheduled in the window
    offered_done: int = 0  # of those, finished (settled, refused or failed) by the window's end
    late_starts: int = 0
    dropped: int = 0
    in_flight_max: int = 0
    unfinished: int = 0  # still running when the drain ended (cancelled)

    def count(self, outcome: Outcome, template: Template, offered_in_window: bool = False) -> None:
        if not self.measure_from <= outcome.finished_at < self.measure_to:
            return
        self.offered_done += offered_in_window
        for step, values in outcome.step_ms.items():
            self.step_ms.setdefault(step, []).extend(values)
        if outcome.kind == "settled":
            self.settled += 1
            self.lines += template.line_count
            self.cross_region += 0 if template.local else 1
            assert outcome.settle_ms is not None and outcome.discharge_ms is not None
            self.settle_ms.append(outcome.settle_ms)
            self.discharge_ms.append(outcome.discharge_ms)
            return
        key = f"{outcome.step}:{outcome.code}"
        (self.refused if outcome.kind == "refused" else self.failed)[key] += 1
        samples = self.errors.setdefault(key, [])
        if len(samples) < ERROR_SAMPLES_MAX:
            samples.append(mask_id_number(outcome.message)[:200])

    def to_json(self) -> dict[str, Any]:
        return {"settled": self.settled, "refused": dict(self.refused), "failed": dict(self.failed),
                "errors": self.errors, "settle_ms": self.settle_ms, "discharge_ms": self.discharge_ms,
                "step_ms": self.step_ms, "lines": self.lines, "cross_region": self.cross_region,
                "offered": self.offered, "offered_done": self.offered_done, "late_starts": self.late_starts, "dropped": self.dropped,
                "in_flight_max": self.in_flight_max, "unfinished": self.unfinished}


class Generator:
    """One process's HIS clients over a pool of templates (each generator has its own part of the pool)."""

    def __init__(self, templates: list[Template], transport: Transport) -> None:
        assert templates
        self.templates = templates
        self.transport = transport
        self.numbers = itertools.count()
        self.channels: list[grpc.aio.Channel] = []
        self.stubs: dict[str, treating_agency_pb2_grpc.TreatingAgencyServiceStub] = {}

    async def connect(self, addresses: dict[str, str]) -> None:
        """Dial every hospital's treating agency at `addresses[region]` (closing the channels of a previous target)."""
        await self.close()
        for code, region in sorted({(t.hospital_code, t.treating_region) for t in self.templates}):
            channel = self.transport.channel(addresses[region], hospital(code))
            self.channels.append(channel)
            self.stubs[code] = treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel)

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()
        self.channels, self.stubs = [], {}

    def next_template(self) -> Template:
        return self.templates[next(self.numbers) % len(self.templates)]

    async def call(self, method: Any, request: Any, timings: list[float]) -> Any:  # noqa: ANN401
        """One step with its retries; the time of all its attempts is appended to `timings` (ms)."""
        started = time.monotonic()
        try:
            for attempt in range(RETRIES_MAX):
                try:
                    return await method(request, timeout=CALL_TIMEOUT_S)
                except grpc.aio.AioRpcError as error:
                    if error.code() not in RETRY_CODES or attempt == RETRIES_MAX - 1:
                        raise
                    await asyncio.sleep(RETRY_BACKOFF_S * 2**attempt)
            raise AssertionError("unreachable")
        finally:
            timings.append((time.monotonic() - started) * 1000)

    async def discharge(self, template: Template) -> Outcome:
        """Admit, upload, settle: one patient's discharge with fresh request ids."""
        stub = self.stubs[template.hospital_code]
        steps: dict[str, list[float]] = {"admit": [], "upload": [], "settle": []}
        started = time.monotonic()
        step = "admit"
        try:
            admit = ta.AdmitRequest()
            admit.CopyFrom(template.admit)
            admit.request_id = str(uuid.uuid4())
            encounter_id = (await self.call(stub.Admit, admit, steps["admit"])).encounter_id
            step = "upload"
            for batch in template.uploads:
                upload = ta.UploadChargesRequest()
                upload.CopyFrom(batch)
                upload.request_id, upload.encounter_id = str(uuid.uuid4()), encounter_id
                await self.call(stub.UploadCharges, upload, steps["upload"])
            step = "settle"
            settle = ta.SettleRequest(request_id=str(uuid.uuid4()), encounter_id=encounter_id,
                                      discharged_on=template.settle.discharged_on)
            await self.call(stub.Settle, settle, steps["settle"])
        except grpc.aio.AioRpcError as error:
            definite = step == "settle" and error.code() not in RETRY_CODES
            return Outcome("refused" if definite else "failed", step, error.code().name, error.details() or "",
                           time.monotonic(), step_ms=steps)
        finished = time.monotonic()
        return Outcome("settled", step, finished_at=finished, settle_ms=steps["settle"][-1],
                       discharge_ms=(finished - started) * 1000, step_ms=steps)

    async def counted(self, tally: Tally, template: Template, offered_in_window: bool = False) -> None:
        tally.count(await self.discharge(template), template, offered_in_window)

    async def run_open(self, rate_per_s: float, first_offset_s: float, in_flight_max: int, start_at: float,
                       measure_from: float, measure_to: float) -> Tally:
        """Start a discharge every 1/rate_per_s seconds from `start_at + first_offset_s` until `measure_to`, at most
        `in_flight_max` at once."""
        assert rate_per_s > 0 and in_flight_max >= 1
        tally = Tally(measure_from, measure_to)
        running: set[asyncio.Task] = set()
        period_s = 1 / rate_per_s
        for number in itertools.count():  # bounded: the schedule passes measure_to
            scheduled = start_at + first_offset_s + number * period_s
            if scheduled >= measure_to:
                break
            delay_s = scheduled - time.monotonic()
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            in_window = scheduled >= measure_from
            tally.offered += in_window
            if (time.monotonic() - scheduled) * 1000 > LATE_START_MS and in_window:
                tally.late_starts += 1
            if len(running) >= in_flight_max:
                tally.dropped += in_window
                continue
            task = asyncio.create_task(self.counted(tally, self.next_template(), in_window))
            running.add(task)
            task.add_done_callback(running.discard)
            tally.in_flight_max = max(tally.in_flight_max, len(running))
        await self.drain(running, tally)
        return tally

    async def run_closed(self, clients: int, start_at: float, measure_from: float, measure_to: float) -> Tally:
        """`clients` clients discharging back to back from `start_at`; none starts a discharge after `measure_to`."""
        assert clients >= 1
        tally = Tally(measure_from, measure_to)

        async def client() -> None:
            while time.monotonic() < measure_to:  # bounded by the window
                await self.counted(tally, self.next_template())

        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        tasks = {asyncio.create_task(client()) for _ in range(clients)}
        tally.in_flight_max = clients
        await self.drain(tasks, tally)
        return tally

    @staticmethod
    async def drain(tasks: set[asyncio.Task], tally: Tally) -> None:
        if not tasks:
            return
        _, pending = await asyncio.wait(set(tasks), timeout=max(0.0, tally.measure_to - time.monotonic()) + DRAIN_S)
        tally.unfinished = len(pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


# -- the process: JSON lines on stdin and stdout ---------------------------------------------------------------

async def serve(commands: Any, answers: Any) -> None:  # noqa: ANN401
    generator: Generator | None = None
    while True:
        line = await asyncio.to_thread(commands.readline)
        if not line:
            break  # the harness is gone
        command = json.loads(line)
        kind = command["cmd"]
        if kind == "init":
            templates = make_templates(command["seed"], command["templates"], load_regions(),
                                       command["members_per_region"], date.fromisoformat(command["month_start"]),
                                       command["lines_mean"], first=command["first"])
            generator = Generator(templates, transport_for(command["certs_dir"]))
            answer: dict[str, Any] = {"ready": len(templates)}
        elif kind == "connect":
            assert generator is not None
            await generator.connect(command["addresses"])
            answer = {"connected": len(generator.stubs)}
        elif kind == "open":
            assert generator is not None
            answer = (await generator.run_open(command["rate_per_s"], command["first_offset_s"],
                                               command["in_flight_max"], command["start_at"], command["measure_from"],
                                               command["measure_to"])).to_json()
        elif kind == "closed":
            assert generator is not None
            answer = (await generator.run_closed(command["clients"], command["start_at"], command["measure_from"],
                                                 command["measure_to"])).to_json()
        elif kind == "exit":
            break
        else:
            raise ValueError(f"unknown command {kind!r}")
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    if generator is not None:
        await generator.close()


def main() -> None:
    # Answers go to the real stdout only; anything a library prints goes to stderr (the harness's log file).
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    asyncio.run(serve(sys.stdin, answers))


if __name__ == "__main__":
    main()
