"""The harness's dispute phase (拒付 / 申诉, SPEC §12.3): after the discharges, disputes are raised, answered and
decided while the faults run again, each step retried with the same content until it is answered (every step is
idempotent at the clearing house), then finished on clean links; each treating agency then books its deductions
(扣款) by reconciling with the clearing house. The invariants (services/faults/invariants.py) check that every owed
adjustment was posted exactly once at the clearing house and booked exactly once by the treating agency.

Which stays are disputed, for how much and how each ends is the seed's: a share of the settled cross-region stays
the HIS kept (not cancelled, not reversed); a tenth of the fund pay; accepted, or appealed then upheld or rejected.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from dataclasses import dataclass, field

import grpc
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import clearing_house_pb2_grpc, treating_agency_pb2 as ta, treating_agency_pb2_grpc

from services.common.clock import shanghai_today
from services.faults.journal import DEFINITE_CODES, Intent, Journal, Outcome
from services.security.party import Transport
from services.stack.config import StackConfig, operator_identity

DISPUTE_NAMESPACE = uuid.UUID("5d0a4a8e-2f59-4b7e-8c11-0e6c9b2d7f43")
DISPUTES_MAX = 24
CALL_DEADLINE_S = 3.0
ATTEMPTS_MAX = 60


@dataclass
class PlannedDispute:
    """One dispute of the run and how it is meant to end; `state` is the last state the clearing house answered."""

    dispute_id: str
    settlement_id: str
    insured_region: str
    amount_fen: int
    ending: str  # "accepted", "upheld" or "rejected"
    state: int = 0  # ch.DisputeState; 0 until raised
    refused: str = ""  # a definite refusal (e.g. the settlement was undone by reconciliation meanwhile)
    retries: int = 0


@dataclass
class DisputeCounts:
    planned: int = 0
    retries: int = 0
    refused: int = 0
    done: dict[str, int] = field(default_factory=dict)


def plan(journal: Journal, seed: int) -> list[PlannedDispute]:
    """The disputes of the run, from the settled cross-region stays the HIS kept."""
    rng = random.Random(f"disputes:{seed}")
    kept = sorted((entry for entry in journal.entries.values()
                   if entry.outcome is Outcome.SUCCEEDED and entry.intent is Intent.SETTLE and not entry.local
                   and not entry.cancel_request_id and entry.split is not None and entry.split.fund_pay_fen >= 10),
                  key=lambda entry: entry.index)
    chosen = rng.sample(kept, min(DISPUTES_MAX, len(kept)))
    endings = ("accepted", "upheld", "rejected")
    return [PlannedDispute(str(uuid.uuid5(DISPUTE_NAMESPACE, f"{seed}:{entry.settlement_id}")), entry.settlement_id,
                           entry.insured_region, entry.split.fund_pay_fen // 10, endings[index % 3])
            for index, entry in enumerate(sorted(chosen, key=lambda entry: entry.index))]


class Disputer:
    """Drives the planned disputes as the operators would, over `address` (the clearing house, or a proxy of it)."""

    def __init__(self, config: StackConfig, transport: Transport, planned: list[PlannedDispute],
                 address: str | None = None) -> None:
        self.config = config
        self.transport = transport
        self.planned = planned
        self.address = address or config.address(config.clearing_house_port)
        self.counts = DisputeCounts(planned=len(planned))

    async def run(self, stop: asyncio.Event | None = None, spread_s: float = 0.0) -> None:
        """Drive every dispute to its ending; with `stop`, only until it is set (the faults' window), each dispute
        starting within `spread_s` and its steps a moment apart, so that they meet the kills and cuts."""
        async with self.transport.channel(self.address, operator_identity(None)) as channel:
            stub = clearing_house_pb2_grpc.ClearingHouseServiceStub(channel)
            await asyncio.gather(*(self.drive(stub, item, stop, spread_s) for item in self.planned))

    async def drive(self, stub: clearing_house_pb2_grpc.ClearingHouseServiceStub, item: PlannedDispute,
                    stop: asyncio.Event | None, spread_s: float) -> None:
        rng = random.Random(item.dispute_id)
        if stop is not None and await stopped(stop, rng.uniform(0, spread_s)):
            return
        failures = 0
        for _ in range(ATTEMPTS_MAX):
            if item.refused or self.finished(item) or (stop is not None and stop.is_set()):
                return
            try:
                call = getattr(stub, self.next_rpc(item))
                item.state = (await call(self.next_request(item), timeout=CALL_DEADLINE_S)).dispute.state
                failures = 0
                pause_s = rng.uniform(0.3, 1.5) if stop is not None else 0.0  # the next step a moment later
            except grpc.aio.AioRpcError as error:
                if error.code() in DEFINITE_CODES:
                    item.refused = f"{error.code().name}: {error.details()}"
                    self.counts.refused += 1
                    return
                item.retries += 1
                self.counts.retries += 1
                failures += 1
                pause_s = min(2.0, 0.2 * 2 ** min(failures, 4)) * (0.5 + rng.random())  # resend, same content
            if stop is not None and await stopped(stop, pause_s):
                return
            if stop is None and pause_s:
                await asyncio.sleep(pause_s)

    @staticmethod
    def finished(item: PlannedDispute) -> bool:
        return item.state in (ch.DISPUTE_STATE_ACCEPTED, ch.DISPUTE_STATE_UPHELD, ch.DISPUTE_STATE_REJECTED,
                              ch.DISPUTE_STATE_LAPSED)

    @staticmethod
    def next_rpc(item: PlannedDispute) -> str:
        if item.state == 0:
            return "RaiseDispute"
        if item.state == ch.DISPUTE_STATE_RAISED:
            return "AnswerDispute"
        assert item.state == ch.DISPUTE_STATE_APPEALED
        return "DecideDispute"

    @staticmethod
    def next_request(item: PlannedDispute):  # noqa: ANN205 - a request message
        if item.state == 0:
            return ch.RaiseDisputeRequest(request_id=item.dispute_id, settlement_id=item.settlement_id,
                                          amount_fen=item.amount_fen, rule_id="AUD-DAYQTY",
                                          insured_region=item.insured_region)
        if item.state == ch.DISPUTE_STATE_RAISED:
            if item.ending == "accepted":
                return ch.AnswerDisputeRequest(request_id=str(uuid.uuid4()), dispute_id=item.dispute_id,
                                               answer=ch.DISPUTE_ANSWER_ACCEPT)
            return ch.AnswerDisputeRequest(request_id=str(uuid.uuid4()), dispute_id=item.dispute_id,
                                           answer=ch.DISPUTE_ANSWER_APPEAL,
                                           appeal_text="billed as the catalogue allows")
        decision = ch.DISPUTE_DECISION_UPHELD if item.ending == "upheld" else ch.DISPUTE_DECISION_REJECTED
        return ch.DecideDisputeRequest(request_id=str(uuid.uuid4()), dispute_id=item.dispute_id, decision=decision)

    async def book_deductions(self) -> None:
        """Every treating agency reconciles today with the clearing house (对账), which books the deductions the
        clearing house posted against its hospitals; retried until each answers."""
        today = shanghai_today().isoformat()
        for region in sorted(self.config.region_ports):
            async with self.transport.channel(self.config.address(self.config.region_ports[region]),
                                              operator_identity(None)) as channel:
                stub = treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel)
                for attempt in range(ATTEMPTS_MAX):
                    try:
                        await stub.Reconcile(ta.ReconcileRequest(day=today), timeout=60.0)
                        break
                    except grpc.aio.AioRpcError:
                        if attempt == ATTEMPTS_MAX - 1:
                            raise
                        await asyncio.sleep(0.5)

    def tally(self) -> DisputeCounts:
        done: dict[str, int] = {}
        for item in self.planned:
            name = ch.DisputeState.Name(item.state) if item.state else "NOT_RAISED"
            done[name] = done.get(name, 0) + 1
        self.counts.done = done
        return self.counts


async def stopped(stop: asyncio.Event, delay_s: float) -> bool:
    """Wait `delay_s` unless `stop` is set first; whether it is."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay_s)
    return stop.is_set()


async def dispute_under_faults(disputer: Disputer, chaos, links, window_s: float, faults: bool,  # noqa: ANN001
                               phase) -> DisputeCounts:  # noqa: ANN001
    """Drive the disputes for `window_s` while chaos kills and the proxies cut (when `faults`), then finish them on
    clean links with every service up, and have every treating agency book its deductions."""
    stop_disputes, stop_chaos = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(disputer.run(stop_disputes, spread_s=window_s / 2))]
    if faults:
        tasks.append(asyncio.create_task(chaos.run(stop_chaos)))
    links.set_faulty(faults)
    try:
        await asyncio.wait(tasks[:1], timeout=window_s)
        links.set_faulty(False)
        stop_chaos.set()
        stop_disputes.set()
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await chaos.heal()
    phase("finishing the disputes on clean links; treating agencies book their deductions")
    await disputer.run()
    await disputer.book_deductions()
    return disputer.tally()
