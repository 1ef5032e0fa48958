"""Per-identity call limits: a token bucket (rate + burst) and a cap on calls in flight, per certificate identity.

One `Limiter` per serving process (held by the party's `Security`); the `rpc`/`rpc_stream` decorators
(services/common/errors.py) ask it for a `Slot` after the caller is authenticated and authorised, before the
method's body runs, and release the slot in a `finally` (a stream's when it ends, fails or is cancelled). A caller
over its limit gets `Throttled` — RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo` (how long to wait) and a
`QuotaFailure` naming the identity and the limit — and the body never runs, so nothing is written.

The limits come from configuration (`CallLimits`): one `Limit` per role (DEFAULT_LIMITS, overridable per role
in the stack's `limits.roles`) and per identity (`limits.identities`, keyed by the identity path such as
`hospital/H44010000001`). The defaults are loose on purpose: they never throttle the demo, `make bench` or the
test suite, and still bound what one runaway or hostile caller can hold (docs/security.md, "Abuse limits").
In insecure mode there is no identity, so no per-identity limit applies.

Everything runs on the event loop's thread with no await between check and update, so no lock is needed. The
clock is injectable (`Limiter(limits, clock=...)`) so unit tests are exact without sleeping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from clearing.errors import Throttled
from services.security.identity import AGENCY, CLEARINGHOUSE, HOSPITAL, OPERATOR, ROLES, SIMULATOR, Identity

log = structlog.get_logger()

# What a caller refused for too many calls in flight is told to wait: a call of ours takes milliseconds to a few
# hundred, so a slot frees within about this long; the client backs off from there.
CONCURRENCY_RETRY_MS = 100
# A refusal is logged at most once per identity per window (with the count of refusals since the last line), so
# a flood does not become a log flood.
LOG_WINDOW_S = 10.0
# Idle state is forgotten once there are more identities than this: only identities with a certificate of the
# stack's CA ever get state, but a process may live long.
STATES_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Limit:
    """One identity's allowance: `rate_per_s` calls per second on average with bursts of up to `burst` calls,
    and at most `concurrent` calls in flight. None means no limit of that kind."""

    rate_per_s: float | None
    burst: int
    concurrent: int | None

    def __post_init__(self) -> None:
        if self.rate_per_s is not None and not (self.rate_per_s > 0 and math.isfinite(self.rate_per_s)):
            raise ValueError(f"rate_per_s must be a positive number or null, got {self.rate_per_s!r}")
        if not isinstance(self.burst, int) or self.burst < 1:
            raise ValueError(f"burst must be a whole number of at least 1, got {self.burst!r}")
        if self.concurrent is not None and (not isinstance(self.concurrent, int) or self.concurrent < 1):
            raise ValueError(f"concurrent must be a whole number of at least 1 or null, got {self.concurrent!r}")

    def describe(self) -> str:
        rate = "no rate limit" if self.rate_per_s is None else f"{self.rate_per_s:g} calls/s (burst {self.burst})"
        calls = "no concurrency limit" if self.concurrent is None else f"{self.concurrent} calls in flight"
        return f"{rate}, {calls}"

    def to_json(self) -> dict[str, Any]:
        return {"rate_per_s": self.rate_per_s, "burst": self.burst, "concurrent": self.concurrent}

    def updated(self, overrides: Mapping[str, Any], where: str) -> Limit:
        """This limit with the keys of `overrides` replaced (a configuration entry need not name all three)."""
        unknown = set(overrides) - {"rate_per_s", "burst", "concurrent"}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; expected rate_per_s, burst, "
                             "concurrent")
        values = {**self.to_json(), **overrides}
        try:
            return Limit(values["rate_per_s"], values["burst"], values["concurrent"])
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None


# Sized from the traffic they must never refuse (measured in this repository): the HIS simulator runs at most 64
# discharges at once (services/his/servicer.py CONCURRENCY_MAX), all of which may be one hospital's; the demo and
# `make bench` reach a few hundred calls a second for the whole stack on 2 cores; every discharge of a region goes
# to the clearing house as that region's agency, and every adjudication to an insured agency as the clearing house,
# so those two roles carry everyone's traffic and get the most room. An operator enrols members 32 at a time.
DEFAULT_LIMITS: Mapping[str, Limit] = {
    HOSPITAL: Limit(rate_per_s=200, burst=1_000, concurrent=128),
    AGENCY: Limit(rate_per_s=2_000, burst=10_000, concurrent=1_024),
    CLEARINGHOUSE: Limit(rate_per_s=2_000, burst=10_000, concurrent=1_024),
    OPERATOR: Limit(rate_per_s=1_000, burst=10_000, concurrent=256),
    SIMULATOR: Limit(rate_per_s=100, burst=1_000, concurrent=64),
}
assert set(DEFAULT_LIMITS) == set(ROLES)


@dataclass(frozen=True)
class CallLimits:
    """The limit of every identity: per role, with overrides per identity path. Hashable and comparable, so a
    `Transport` holding it stays a value."""

    roles: tuple[tuple[str, Limit], ...] = tuple(sorted(DEFAULT_LIMITS.items()))
    identities: tuple[tuple[str, Limit], ...] = ()

    def limit_for(self, identity: Identity) -> Limit:
        for path, limit in self.identities:
            if path == identity.path:
                return limit
        return dict(self.roles)[identity.role]

    @classmethod
    def from_config(cls, data: Mapping[str, Any] | None) -> CallLimits:
        """The limits a stack configuration's `limits` object sets (None or {}: the defaults):

            {"roles": {"hospital": {"rate_per_s": 50, "burst": 100, "concurrent": 16}},
             "identities": {"hospital/H44010000001": {"rate_per_s": 5}}}

        A role entry changes the keys it names of that role's default; an identity entry the keys it names of its
        role's (configured) limit. ValueError naming the entry for anything else."""
        data = dict(data or {})
        unknown = set(data) - {"roles", "identities"}
        if unknown:
            raise ValueError(f"limits: unknown key(s) {', '.join(sorted(unknown))}; expected roles, identities")
        roles = dict(DEFAULT_LIMITS)
        for role, overrides in (data.get("roles") or {}).items():
            if role not in roles:
                raise ValueError(f"limits.roles.{role}: unknown role, expected one of {', '.join(ROLES)}")
            roles[role] = roles[role].updated(overrides, f"limits.roles.{role}")
        identities = {}
        for path, overrides in (data.get("identities") or {}).items():
            identity = Identity.from_path(path)  # IdentityError (a ValueError) names a malformed path
            identities[identity.path] = roles[identity.role].updated(overrides, f"limits.identities.{path}")
        return cls(tuple(sorted(roles.items())), tuple(sorted(identities.items())))

    def to_config(self) -> dict[str, Any]:
        """The configuration object that gives these limits back (every role written out)."""
        return {"roles": {role: limit.to_json() for role, limit in self.roles},
                "identities": {path: limit.to_json() for path, limit in self.identities}}


@dataclass(slots=True)
class _State:
    """One identity's bucket and calls in flight."""

    tokens: float
    refilled_at: float
    in_flight: int = 0
    logged_at: float | None = None
    refused_unlogged: int = 0


@dataclass
class Slot:
    """A call admitted under a limit: `release()` it exactly once when the call ends (idempotent)."""

    state: _State | None
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            if self.state is not None:
                self.state.in_flight -= 1


UNLIMITED = Slot(None)


@dataclass
class Limiter:
    """The per-identity limits of one serving process."""

    limits: CallLimits = field(default_factory=CallLimits)
    clock: Callable[[], float] = time.monotonic
    states: dict[Identity, _State] = field(default_factory=dict)

    def admit(self, identity: Identity | None, rpc: str = "") -> Slot:
        """A slot for one call of `identity` (release it when the call ends); `Throttled` when the identity is over
        its concurrency or rate limit — then nothing is taken. No identity (insecure mode): no limit."""
        if identity is None:
            return UNLIMITED
        limit = self.limits.limit_for(identity)
        now = self.clock()
        state = self._state(identity, limit, now)
        self._refill(state, limit, now)
        if limit.concurrent is not None and state.in_flight >= limit.concurrent:
            self._refuse(identity, state, now, rpc, "concurrency", CONCURRENCY_RETRY_MS,
                         f"{limit.concurrent} calls in flight")
        if limit.rate_per_s is not None:
            if state.tokens < 1:
                # The time until the bucket holds one whole token again, rounded up to the millisecond so a client
                # that waits exactly this long finds it there (less a hair, so float noise such as 50.000000000001
                # ms does not add a millisecond).
                retry_ms = max(1, math.ceil((1 - state.tokens) / limit.rate_per_s * 1000 - 1e-6))
                self._refuse(identity, state, now, rpc, "rate", retry_ms,
                             f"{limit.rate_per_s:g} calls/s, burst {limit.burst}")
            state.tokens -= 1
        state.in_flight += 1
        return Slot(state)

    def in_flight(self, identity: Identity) -> int:
        state = self.states.get(identity)
        return 0 if state is None else state.in_flight

    def tokens(self, identity: Identity) -> float:
        """The tokens `identity` has now (its burst when it has never called)."""
        limit = self.limits.limit_for(identity)
        state = self.states.get(identity)
        if state is None:
            return float(limit.burst)
        self._refill(state, limit, self.clock())
        return state.tokens

    def _state(self, identity: Identity, limit: Limit, now: float) -> _State:
        state = self.states.get(identity)
        if state is None:
            if len(self.states) >= STATES_MAX:
                self._forget_idle(now)
            state = self.states[identity] = _State(tokens=float(limit.burst), refilled_at=now)
        return state

    @staticmethod
    def _refill(state: _State, limit: Limit, now: float) -> None:
        if limit.rate_per_s is None:
            state.tokens = float(limit.burst)
        elif now > state.refilled_at:
            state.tokens = min(float(limit.burst), state.tokens + (now - state.refilled_at) * limit.rate_per_s)
        state.refilled_at = max(state.refilled_at, now)

    def _forget_idle(self, now: float) -> None:
        """Drop the identities with nothing in flight and a full bucket: forgetting them changes nothing."""
        for identity, state in list(self.states.items()):
            limit = self.limits.limit_for(identity)
            self._refill(state, limit, now)
            if state.in_flight == 0 and state.tokens >= limit.burst:
                del self.states[identity]

    def _refuse(self, identity: Identity, state: _State, now: float, rpc: str, kind: str, retry_ms: int,
                described: str) -> None:
        state.refused_unlogged += 1
        if state.logged_at is None or now - state.logged_at >= LOG_WINDOW_S:
            # Once per identity per window, counting the refusals the window held, instead of a line per call.
            log.warning("caller_throttled", caller=identity.path, limit=kind, allowed=described, rpc=rpc,
                        refused=state.refused_unlogged, window_s=LOG_WINDOW_S)
            state.logged_at = now
            state.refused_unlogged = 0
        raise Throttled(identity.spiffe_id, kind, described, retry_ms)
