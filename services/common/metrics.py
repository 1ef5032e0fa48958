"""Prometheus metrics of a party (SPEC §10): every call served and made, settlements, prepayment use, refusals,
reconciliation repairs. Each service process serves them on its own metrics port (`stack.json` → `metrics_ports`;
what each one means, and what to alert on: README "Logs, metrics and alerts").

The gRPC series follow go-grpc-prometheus / py-grpc-prometheus, so the usual dashboards and alerts apply:
`grpc_server_*` are recorded by the `rpc`/`rpc_stream` decorators (services/common/errors.py, the one place every
call passes through), `grpc_client_*` by the interceptor on every channel a party dials (services/common/
rpc_metrics.py). `grpc_code` is the status name the caller gets (`OK`, `INVALID_ARGUMENT`, `UNAVAILABLE`…).

Every series carries `party` (`treating`, `insured`, `clearinghouse`, `his`) and `region` (the party's 6-digit
region; empty for the clearing house and the HIS simulator). No label holds an id: every label takes a bounded set
of values (methods, codes, regions, kinds). Ratios are 0–1.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

PARTY_LABELS = ("party", "region")
# Latencies from a millisecond (a refusal before any SQL) to seconds (a Settle waiting on a slow neighbour).
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
RPC_LABELS = ("grpc_type", "grpc_service", "grpc_method", *PARTY_LABELS)

SERVER_STARTED = Counter("grpc_server_started_total", "RPCs started on the server", RPC_LABELS)
SERVER_HANDLED = Counter("grpc_server_handled_total", "RPCs completed on the server, by the status code the caller "
                         "got", (*RPC_LABELS, "grpc_code"))
SERVER_SECONDS = Histogram("grpc_server_handling_seconds", "Time from the call's arrival at the handler to its "
                           "status, seconds", RPC_LABELS, buckets=SECONDS_BUCKETS)
CLIENT_STARTED = Counter("grpc_client_started_total", "RPCs a party started to a neighbour", RPC_LABELS)
CLIENT_HANDLED = Counter("grpc_client_handled_total", "RPCs a party made to a neighbour, by the status code it got",
                         (*RPC_LABELS, "grpc_code"))
CLIENT_SECONDS = Histogram("grpc_client_handling_seconds", "Time from a call to a neighbour to its status, seconds",
                           RPC_LABELS, buckets=SECONDS_BUCKETS)

# `kind`: `local` or `cross_region` (treating agency), `claim` (clearing house), `adjudication` (insured agency).
SETTLEMENTS = Counter("clearing_settlements_total", "Settlements recorded",
                      (*PARTY_LABELS, "kind", "treating_region", "insured_region"))
PREPAYMENT_USAGE = Gauge("clearing_prepayment_usage_ratio", "Share of an insured region's required prepayment "
                         "(预付金) drawn, 0-1 (above 1: overdrawn)", (*PARTY_LABELS, "insured_region"))
PREPAYMENT_WARNINGS = Counter("clearing_prepayment_warnings_total", "Prepayment threshold crossings (top-up requested)",
                              (*PARTY_LABELS, "insured_region"))
# `action`: the core's repair (clearing/reconcile.py `Repair`); `result`: `repaired`, `failed` (the next run tries
# again) or `reported` (nothing to do by rule: `wait` while in flight, `report` for an operator).
RECONCILIATION_REPAIRS = Counter("clearing_reconciliation_repairs_total", "Differences reconciliation (对账) found, "
                                 "by repair and result", (*PARTY_LABELS, "action", "result"))
# An operator call whose audit record could not be written (services/security/audit_log.py): phase `begin` (the
# call was refused) or `outcome` (the action ran, its outcome is missing from the log). Alert on any increase.
OPERATOR_AUDIT_FAILURES = Counter("clearing_operator_audit_failures_total",
                                  "Operator audit records that could not be written", (*PARTY_LABELS, "phase"))
# `limit`: `rate` or `concurrency` (services/security/limits.py); also counted as RESOURCE_EXHAUSTED above.
THROTTLED = Counter("clearing_throttled_total", "Calls refused for a per-identity limit", (*PARTY_LABELS, "limit"))


@dataclass(frozen=True, slots=True)
class Party:
    """The `party` and `region` labels of one party."""

    party: str
    region: str = ""

    @classmethod
    def of(cls, label: str) -> Party:
        """`treating:440100` → Party("treating", "440100"); `clearinghouse` → Party("clearinghouse"): the label each
        party's operator audit log carries (services/security/audit_log.py), which every servicer has."""
        party, _, region = label.partition(":")
        return cls(party, region)

    @property
    def values(self) -> tuple[str, str]:
        """The values of PARTY_LABELS, in order."""
        return self.party, self.region
