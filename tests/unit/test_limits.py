"""Per-identity call limits (services/security/limits.py; docs/security.md "Abuse limits"), worked by hand on an
injected clock: the burst, the refill, the retry-after a refused caller is told, the concurrency slot given back
on success, on error and when a stream ends, the refusal status, and the configuration that sets the limits."""

from __future__ import annotations

from types import SimpleNamespace

import grpc
import pytest
import structlog
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import treating_agency_pb2_grpc as ta_grpc
from google.rpc import code_pb2, error_details_pb2

from clearing.errors import InvalidField, Throttled
from services.common import errors
from services.common.errors import rpc, rpc_stream, status_for
from services.security.identity import Identity, agency, hospital
from services.security.limits import (
    CONCURRENCY_RETRY_MS, DEFAULT_LIMITS, LOG_WINDOW_S, CallLimits, Limit, Limiter,
)

H1 = hospital("H44010000001")
H2 = hospital("H44010000002")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def limiter(rate_per_s: float | None = 10, burst: int = 3, concurrent: int | None = None,
            **identities: Limit) -> tuple[Limiter, Clock]:
    """A limiter whose hospitals have the given limit (other roles: the defaults) on a hand-moved clock."""
    config = {"roles": {"hospital": {"rate_per_s": rate_per_s, "burst": burst, "concurrent": concurrent}},
              "identities": {path.replace("__", "/"): limit.to_json() for path, limit in identities.items()}}
    clock = Clock()
    return Limiter(CallLimits.from_config(config), clock=clock), clock


def refused(limits: Limiter, identity: Identity) -> Throttled:
    with pytest.raises(Throttled) as caught:
        limits.admit(identity)
    return caught.value


# ---------------------------------------------------------------------------------------------
# The token bucket
# ---------------------------------------------------------------------------------------------

def test_a_new_caller_has_its_burst_then_is_refused_until_a_token_refills():
    limits, clock = limiter(rate_per_s=10, burst=3)
    for _ in range(3):
        limits.admit(H1).release()
    error = refused(limits, H1)
    assert error.kind == "rate"
    assert error.retry_after_ms == 100  # one token at 10 per second
    assert error.identity == "spiffe://clearing.local/hospital/H44010000001"
    clock.advance(0.1)
    limits.admit(H1).release()  # exactly the retry-after later, the token is there
    assert refused(limits, H1).retry_after_ms == 100


def test_the_bucket_refills_at_the_rate_and_the_retry_after_is_the_time_to_the_next_whole_token():
    limits, clock = limiter(rate_per_s=10, burst=3)
    for _ in range(3):
        limits.admit(H1).release()
    clock.advance(0.25)  # 2.5 tokens
    assert limits.tokens(H1) == 2.5
    limits.admit(H1).release()
    limits.admit(H1).release()
    assert refused(limits, H1).retry_after_ms == 50  # 0.5 token short at 10 per second: 50 ms
    assert limits.tokens(H1) == 0.5  # a refusal takes nothing


def test_the_bucket_never_holds_more_than_its_burst():
    limits, clock = limiter(rate_per_s=10, burst=3)
    limits.admit(H1).release()
    clock.advance(3600)
    assert limits.tokens(H1) == 3
    for _ in range(3):
        limits.admit(H1).release()
    refused(limits, H1)


def test_a_slow_rate_gives_a_long_retry_after_rounded_up_to_the_millisecond():
    limits, clock = limiter(rate_per_s=3, burst=1)
    limits.admit(H1).release()
    assert refused(limits, H1).retry_after_ms == 334  # 1/3 s, rounded up
    clock.advance(0.2)  # 0.6 token
    assert refused(limits, H1).retry_after_ms == 134  # 0.4 / 3 = 0.1333… s


def test_each_identity_has_its_own_bucket():
    limits, _ = limiter(rate_per_s=10, burst=2)
    limits.admit(H1).release()
    limits.admit(H1).release()
    refused(limits, H1)
    limits.admit(H2).release()  # the other hospital is untouched by the first one's flood
    limits.admit(H2).release()


def test_an_identity_override_beats_its_role_and_names_only_the_keys_it_changes():
    limits, _ = limiter(rate_per_s=10, burst=5, hospital__H44010000002=Limit(rate_per_s=1, burst=1, concurrent=None))
    assert limits.limits.limit_for(H2) == Limit(1, 1, None)
    assert limits.limits.limit_for(H1) == Limit(10, 5, None)
    partial = CallLimits.from_config({"identities": {"hospital/H44010000002": {"concurrent": 2}}})
    assert partial.limit_for(H2) == Limit(DEFAULT_LIMITS["hospital"].rate_per_s, DEFAULT_LIMITS["hospital"].burst, 2)
    assert partial.limit_for(agency("440100")) == DEFAULT_LIMITS["agency"]


def test_no_identity_insecure_mode_is_never_limited():
    limits, _ = limiter(rate_per_s=1, burst=1, concurrent=1)
    slots = [limits.admit(None) for _ in range(100)]
    for slot in slots:
        slot.release()
    assert limits.states == {}


def test_a_role_without_a_rate_limit_is_only_limited_in_flight():
    limits, _ = limiter(rate_per_s=None, burst=1, concurrent=None)
    for _ in range(10_000):
        limits.admit(H1).release()


# ---------------------------------------------------------------------------------------------
# Calls in flight
# ---------------------------------------------------------------------------------------------

def test_calls_in_flight_are_capped_and_a_released_slot_admits_the_next_call():
    limits, _ = limiter(rate_per_s=None, burst=1, concurrent=2)
    first, second = limits.admit(H1), limits.admit(H1)
    assert limits.in_flight(H1) == 2
    error = refused(limits, H1)
    assert error.kind == "concurrency"
    assert error.retry_after_ms == CONCURRENCY_RETRY_MS
    first.release()
    first.release()  # idempotent: a slot is given back once
    assert limits.in_flight(H1) == 1
    limits.admit(H1)
    assert limits.in_flight(H1) == 2
    second.release()


def test_a_call_refused_for_concurrency_takes_no_token_and_one_refused_for_rate_takes_no_slot():
    limits, _ = limiter(rate_per_s=10, burst=2, concurrent=1)
    slot = limits.admit(H1)
    assert refused(limits, H1).kind == "concurrency"
    assert limits.tokens(H1) == 1  # only the admitted call took one
    slot.release()
    limits.admit(H1).release()
    assert refused(limits, H1).kind == "rate"
    assert limits.in_flight(H1) == 0


# ---------------------------------------------------------------------------------------------
# Logging a refusal once per caller per window
# ---------------------------------------------------------------------------------------------

def test_a_flood_of_refusals_is_logged_once_per_caller_per_window_with_its_count():
    limits, clock = limiter(rate_per_s=0.01, burst=1)  # one token per 100 s: everything below is refused
    limits.admit(H1).release()
    limits.admit(H2).release()
    with structlog.testing.capture_logs() as logs:
        for _ in range(50):
            refused(limits, H1)  # the first is logged at once, the other 49 wait for the window to end
        clock.advance(LOG_WINDOW_S / 2)
        for _ in range(10):
            refused(limits, H1)
        refused(limits, H2)  # another caller: a line of its own at once
        clock.advance(LOG_WINDOW_S / 2)
        refused(limits, H1)  # the window is over: one line counting the 60 refusals since the last
    lines = [(line["caller"], line["refused"]) for line in logs if line["event"] == "caller_throttled"]
    assert lines == [("hospital/H44010000001", 1), ("hospital/H44010000002", 1), ("hospital/H44010000001", 60)]


# ---------------------------------------------------------------------------------------------
# The refusal the caller sees
# ---------------------------------------------------------------------------------------------

def test_a_throttled_call_is_resource_exhausted_with_retry_info_and_a_quota_failure():
    status = status_for(Throttled("spiffe://clearing.local/hospital/H44010000001", "rate", "10 calls/s, burst 3",
                                  1250))  # 1.25 s
    assert status.code == code_pb2.RESOURCE_EXHAUSTED
    retry, quota = error_details_pb2.RetryInfo(), error_details_pb2.QuotaFailure()
    assert status.details[0].Unpack(retry) and status.details[1].Unpack(quota)
    assert (retry.retry_delay.seconds, retry.retry_delay.nanos) == (1, 250_000_000)
    assert quota.violations[0].subject == "spiffe://clearing.local/hospital/H44010000001"
    assert quota.violations[0].quota_id == "rate"
    assert "10 calls/s" in quota.violations[0].description


# ---------------------------------------------------------------------------------------------
# The decorators: the slot is taken before the body and given back however the call ends
# ---------------------------------------------------------------------------------------------

class Aborted(Exception):
    pass


class Context:
    """The little of a grpc.aio ServicerContext the decorators use on these paths."""

    def __init__(self) -> None:
        self.status = None

    async def abort_with_status(self, status) -> None:  # noqa: ANN001
        self.status = status
        raise grpc.aio.AbortError()

    async def abort(self, code, details) -> None:  # noqa: ANN001
        self.status = (code, details)
        raise grpc.aio.AbortError()


class Servicer(ta_grpc.TreatingAgencyServiceServicer):
    def __init__(self, limits: Limiter) -> None:
        self.security = SimpleNamespace(limiter=limits)
        # A hospital calls: nothing is audited. Its `party` labels this test servicer's metrics apart from the real
        # parties' (tests/integration/test_metrics.py reads the registry of a worker that may have run this module).
        self.audit_log = SimpleNamespace(party="test")
        self.ran = 0
        self.in_flight_seen: list[int] = []

    @rpc
    async def GetSettlement(self, request, context):  # noqa: ANN001, ANN201
        self.ran += 1
        self.in_flight_seen.append(self.security.limiter.in_flight(H1))
        if request.settlement_id == "bad":
            raise InvalidField("settlement_id", "is bad")
        if request.settlement_id == "crash":
            raise RuntimeError("a bug")
        return ta.GetSettlementResponse()

    @rpc_stream
    async def StreamDailyDetail(self, request, context):  # noqa: ANN001, ANN201
        self.ran += 1
        for _ in range(3):
            self.in_flight_seen.append(self.security.limiter.in_flight(H1))
            yield ta.StreamDailyDetailResponse()
        if request.day == "fail":
            raise InvalidField("day", "is bad")


@pytest.fixture
def served(monkeypatch):
    """A servicer whose every caller is H1 (authentication and the table are tested elsewhere)."""
    monkeypatch.setattr(errors, "authenticate", lambda security, context: H1)
    monkeypatch.setattr(errors, "authorise", lambda security, caller, rpc_name, request: None)
    limits, clock = limiter(rate_per_s=None, burst=1, concurrent=1)
    return Servicer(limits), limits


async def test_a_unary_call_gives_its_slot_back_on_success_on_a_refusal_and_on_a_bug(served):
    servicer, limits = served
    await servicer.GetSettlement(ta.GetSettlementRequest(settlement_id="ok"), Context())
    for kind in ("bad", "crash"):
        context = Context()
        with pytest.raises(grpc.aio.AbortError):
            await servicer.GetSettlement(ta.GetSettlementRequest(settlement_id=kind), context)
    assert servicer.in_flight_seen == [1, 1, 1]
    assert limits.in_flight(H1) == 0


async def test_a_caller_over_its_limit_is_refused_before_the_body_runs(served):
    servicer, limits = served
    held = limits.admit(H1)  # the one call H1 may have in flight
    context = Context()
    with pytest.raises(grpc.aio.AbortError):
        await servicer.GetSettlement(ta.GetSettlementRequest(settlement_id="ok"), context)
    assert servicer.ran == 0
    assert context.status.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    held.release()
    assert limits.in_flight(H1) == 0


async def test_a_stream_holds_its_slot_until_it_ends_fails_or_is_closed_early(served):
    servicer, limits = served
    items = [item async for item in servicer.StreamDailyDetail(ta.StreamDailyDetailRequest(day="ok"), Context())]
    assert len(items) == 3 and servicer.in_flight_seen == [1, 1, 1]
    assert limits.in_flight(H1) == 0

    with pytest.raises(grpc.aio.AbortError):
        async for _ in servicer.StreamDailyDetail(ta.StreamDailyDetailRequest(day="fail"), Context()):
            pass
    assert limits.in_flight(H1) == 0

    stream = servicer.StreamDailyDetail(ta.StreamDailyDetailRequest(day="ok"), Context())
    await anext(stream)
    assert limits.in_flight(H1) == 1
    await stream.aclose()  # what grpc does when the client cancels: the generator is closed at its yield
    assert limits.in_flight(H1) == 0


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

def test_the_defaults_cover_every_role_and_survive_a_round_trip_through_the_configuration():
    defaults = CallLimits.from_config(None)
    assert defaults == CallLimits() == CallLimits.from_config({})
    assert dict(defaults.roles) == dict(DEFAULT_LIMITS)
    configured = CallLimits.from_config({"roles": {"operator": {"burst": 7}},
                                         "identities": {"hospital/H44010000001": {"rate_per_s": 0.5}}})
    assert CallLimits.from_config(configured.to_config()) == configured
    hash(configured)  # a Transport holding it stays hashable


@pytest.mark.parametrize(("config", "names"), [
    ({"role": {}}, "limits: unknown key(s) role"),
    ({"roles": {"doctor": {}}}, "limits.roles.doctor: unknown role"),
    ({"roles": {"hospital": {"rate": 5}}}, "limits.roles.hospital: unknown key(s) rate"),
    ({"roles": {"hospital": {"rate_per_s": 0}}}, "limits.roles.hospital: rate_per_s must be a positive number"),
    ({"roles": {"hospital": {"burst": 0}}}, "limits.roles.hospital: burst must be a whole number"),
    ({"roles": {"hospital": {"concurrent": 2.5}}}, "limits.roles.hospital: concurrent must be a whole number"),
    ({"identities": {"hospital/H4401": {}}}, "hospital/H4401"),
    ({"identities": {"agency/440100": {"burst": -1}}}, "limits.identities.agency/440100: burst"),
])
def test_a_malformed_configuration_is_refused_naming_the_entry(config, names):
    with pytest.raises(ValueError) as caught:
        CallLimits.from_config(config)
    assert names in str(caught.value)
