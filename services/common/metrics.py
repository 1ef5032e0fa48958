"""Prometheus metrics of a party (SPEC §10): calls, latency and refusals per RPC.

Recorded in one place, the `rpc` decorator, so every servicer method is measured the same way;
each process serves them on its own metrics port (`stack.json` → `metrics_ports`).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RPC_SECONDS = Histogram("clearing_rpc_seconds", "Latency of a handled RPC", ["method"],
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
RPC_RESULTS = Counter("clearing_rpc_results_total", "Handled RPCs by result code", ["method", "code"])
SETTLEMENTS = Counter("clearing_settlements_total", "Settlements recorded", ["party", "kind"])
PREPAYMENT_USAGE = Gauge("clearing_prepayment_usage_percent", "Prepayment used, percent of the required amount",
                         ["insured_region"])
PREPAYMENT_WARNINGS = Counter("clearing_prepayment_warnings_total", "Prepayment threshold crossings",
                              ["insured_region"])
# An operator call whose audit record could not be written (services/security/audit_log.py): phase `begin` (the
# call was refused) or `outcome` (the action ran, its outcome is missing from the log). Alert on any increase.
OPERATOR_AUDIT_FAILURES = Counter("clearing_operator_audit_failures_total",
                                  "Operator audit records that could not be written", ["party", "phase"])
THROTTLED = Counter("clearing_throttled_total", "Calls refused for a per-identity limit", ["limit"])
