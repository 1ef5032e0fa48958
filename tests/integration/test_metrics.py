"""The metrics a party exports (services/common/metrics.py), read back from the process's registry after real calls
through the in-process stack: every call counted where it is served (`grpc_server_*`) and where it is made
(`grpc_client_*`) with the status code the caller gets — OK, a bad request's INVALID_ARGUMENT, a downstream
refusal or outage passed on with its own code — timed in the histogram, labelled with its party and region; the
business series (settlements by region pair, prepayment usage as a 0–1 ratio, reconciliation repairs).

And the shipped dashboard (deploy/grafana/clearing-house.json) and alert rules (deploy/prometheus/alerts.yml) name
only metrics, and labels, that the services really export: every query is read and checked against the text
exposition of this process, which is what Prometheus scrapes from a service.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import grpc
import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import treating_agency_pb2 as ta
from prometheus_client import REGISTRY, generate_latest

from services.stack.processes import free_port
from services.stack.wiring import start_region

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
GUANGZHOU, INSURED, UNFUNDED = "440100", "610924", "530100"  # UNFUNDED: tests/conftest.py UNFUNDED_REGION
H_GUANGZHOU = "H44010000001"
H_PANJIN, REJECTING_INSURED = "H21110000001", "230400"  # 211100–230400 reject unmapped lines (agreements.toml)
TREATING = "clearinghouse.v1.TreatingAgencyService"
CLEARING = "clearinghouse.v1.ClearingHouseService"
INSURED_SERVICE = "clearinghouse.v1.InsuredAgencyService"
PARTIES = {"treating", "insured", "clearinghouse", "his"}
GRACE_S = 1

# The hops between the parties as unary calls, each counted as a call of its own (a batch stream is one call for its
# whole life: docs/benchmarks.md and the README say so).
OWN_STACK_BATCHING = {"enabled": False}


@pytest.fixture(scope="module")
def kit(own_kit):
    """A stack of the module's own: its reconciliation and pending settlements stay out of the shared stack's days."""
    return own_kit


Samples = dict[tuple[str, frozenset], float]


def samples() -> Samples:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in REGISTRY.collect() for sample in family.samples}


def rpc(service: str, method: str, party: str, region: str = "", kind: str = "unary") -> dict[str, str]:
    return {"grpc_type": kind, "grpc_service": service, "grpc_method": method, "party": party, "region": region}


class Delta:
    """What grew between two readings of the registry."""

    def __init__(self, before: Samples) -> None:
        self.before = before
        self.after = samples()

    def __call__(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return self.after.get(key, 0.0) - self.before.get(key, 0.0)


async def settled_reading(before: Samples) -> Delta:
    await asyncio.sleep(0.05)  # a stream's client-side outcome is counted by a task once the call is done
    return Delta(before)


async def open_stay(kit, hospital: str, member, day: str, lines=None) -> str:  # noqa: ANN001
    region = hospital[1:7]
    lines = lines or [kit.bill_line("1", kit.plain_codes(region)[0], "2", 150000, day)]
    return await kit.open_encounter(hospital, member, lines, day)


async def test_a_settlement_is_counted_ok_where_it_is_served_and_where_it_is_called(kit, timeline):
    day = "2026-06-08"
    timeline.at(day)
    member = await kit.new_member(INSURED)
    encounter_id = await open_stay(kit, H_GUANGZHOU, member, day)
    before = samples()
    await kit.treating(GUANGZHOU).Settle(ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id,
                                                          discharged_on=day))
    grown = await settled_reading(before)

    settle = rpc(TREATING, "Settle", "treating", GUANGZHOU)
    assert grown("grpc_server_started_total", **settle) == 1
    assert grown("grpc_server_handled_total", **settle, grpc_code="OK") == 1
    assert grown("grpc_server_handling_seconds_count", **settle) == 1
    assert grown("grpc_server_handling_seconds_bucket", **settle, le="+Inf") == 1
    assert grown("grpc_server_handling_seconds_sum", **settle) > 0
    # Each hop, served and called: treating agency → clearing house → insured agency.
    assert grown("grpc_server_handled_total", **rpc(CLEARING, "SettleClaim", "clearinghouse"), grpc_code="OK") == 1
    assert grown("grpc_server_handled_total", **rpc(INSURED_SERVICE, "Adjudicate", "insured", INSURED),
                 grpc_code="OK") == 1
    assert grown("grpc_client_started_total", **rpc(CLEARING, "SettleClaim", "treating", GUANGZHOU)) == 1
    assert grown("grpc_client_handled_total", **rpc(CLEARING, "SettleClaim", "treating", GUANGZHOU),
                 grpc_code="OK") == 1
    assert grown("grpc_client_handling_seconds_count", **rpc(CLEARING, "SettleClaim", "treating", GUANGZHOU)) == 1
    assert grown("grpc_client_handled_total", **rpc(INSURED_SERVICE, "Adjudicate", "clearinghouse"),
                 grpc_code="OK") == 1
    # The settlement itself, by region pair, once at each party.
    pair = {"treating_region": GUANGZHOU, "insured_region": INSURED}
    assert grown("clearing_settlements_total", party="treating", region=GUANGZHOU, kind="cross_region", **pair) == 1
    assert grown("clearing_settlements_total", party="clearinghouse", region="", kind="claim", **pair) == 1
    assert grown("clearing_settlements_total", party="insured", region=INSURED, kind="adjudication", **pair) == 1
    usage = grown.after[("clearing_prepayment_usage_ratio",
                         frozenset({"party": "clearinghouse", "region": "", "insured_region": INSURED}.items()))]
    assert 0 <= usage < 1, "a bottomless prepayment is hardly used"


async def test_prepayment_usage_is_a_ratio_of_one_when_exhausted(kit, timeline):
    day = "2026-06-08"
    timeline.at(day)
    member = await kit.new_member(UNFUNDED)
    encounter_id = await open_stay(kit, H_GUANGZHOU, member, day)
    await kit.treating(GUANGZHOU).Settle(ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id,
                                                          discharged_on=day))
    labels = {"party": "clearinghouse", "region": "", "insured_region": UNFUNDED}
    assert REGISTRY.get_sample_value("clearing_prepayment_usage_ratio", labels) >= 1.0, "1.0 is 100 %, not 100"


async def test_a_bad_request_is_counted_invalid_argument(kit):
    member = await kit.new_member(INSURED)
    before = samples()
    error = await kit.refusal(kit.treating(GUANGZHOU).Admit(kit.admit_request(H_GUANGZHOU, member, "2026-02-30")))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    grown = await settled_reading(before)
    admit = rpc(TREATING, "Admit", "treating", GUANGZHOU)
    assert grown("grpc_server_handled_total", **admit, grpc_code="INVALID_ARGUMENT") == 1
    assert grown("grpc_server_handled_total", **admit, grpc_code="OK") == 0
    assert grown("grpc_server_handling_seconds_count", **admit) == 1


async def test_a_downstream_refusal_is_counted_with_the_code_the_caller_gets(kit, timeline):
    """The clearing house refuses the claim (the agreement rejects an unmapped line); the treating agency passes the
    refusal on: INVALID_ARGUMENT served by both and as the treating agency's call got it."""
    day = "2026-06-09"
    timeline.at(day)
    member = await kit.new_member(REJECTING_INSURED, filing="resident")
    region = H_PANJIN[1:7]
    lines = [kit.bill_line("1", kit.plain_codes(region)[0], "1", 8000, day),
             kit.bill_line("2", kit.local_only_code(region), "2", 3000, day)]
    encounter_id = await open_stay(kit, H_PANJIN, member, day, lines)
    before = samples()
    error = await kit.refusal(kit.treating(region).Settle(ta.SettleRequest(
        request_id=kit.rid(), encounter_id=encounter_id, discharged_on=day)))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    grown = await settled_reading(before)
    assert grown("grpc_server_handled_total", **rpc(TREATING, "Settle", "treating", region),
                 grpc_code="INVALID_ARGUMENT") == 1
    assert grown("grpc_client_handled_total", **rpc(CLEARING, "SettleClaim", "treating", region),
                 grpc_code="INVALID_ARGUMENT") == 1
    assert grown("grpc_server_handled_total", **rpc(CLEARING, "SettleClaim", "clearinghouse"),
                 grpc_code="INVALID_ARGUMENT") == 1


async def test_an_unreachable_neighbour_is_unavailable_and_the_repair_that_follows_is_counted(kit, timeline):
    """A treating agency whose clearing house cannot be reached answers UNAVAILABLE, as its call got it; the settlement
    it left pending is reversed by the next reconciliation, counted as a repair of the treating agency — which read
    the clearing house's detail over a stream, counted at both ends."""
    day = "2026-06-10"
    timeline.at(day)
    member = await kit.new_member(INSURED)
    encounter_id = await open_stay(kit, H_GUANGZHOU, member, day)
    cut_off = await start_region(GUANGZHOU, kit.stack.config.dsn(f"treating_{GUANGZHOU}"),
                                 kit.stack.config.dsn(f"insured_{GUANGZHOU}"), f"127.0.0.1:{free_port()}",
                                 transport=kit.stack.transport)
    before = samples()
    try:
        error = await kit.refusal(kit.stack.treating(GUANGZHOU, f"127.0.0.1:{cut_off.port}").Settle(
            ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on=day), timeout=5))
        assert error.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        await cut_off.stop()
    grown = await settled_reading(before)
    assert grown("grpc_server_handled_total", **rpc(TREATING, "Settle", "treating", GUANGZHOU),
                 grpc_code="UNAVAILABLE") == 1
    assert grown("grpc_client_handled_total", **rpc(CLEARING, "SettleClaim", "treating", GUANGZHOU),
                 grpc_code="UNAVAILABLE") == 1

    await asyncio.sleep(GRACE_S + 0.2)  # the pending settlement ages past the grace period
    before = samples()
    await kit.clearing().ReconcileInsuredAgencies(ch.ReconcileInsuredAgenciesRequest(day=day, pending_grace_s=GRACE_S))
    await kit.treating(GUANGZHOU).Reconcile(ta.ReconcileRequest(day=day, pending_grace_s=GRACE_S))
    grown = await settled_reading(before)
    assert grown("clearing_reconciliation_repairs_total", party="treating", region=GUANGZHOU,
                 action="reverse_stale_pending", result="repaired") == 1
    detail = "StreamClaimDailyDetail"
    assert grown("grpc_client_handled_total", **rpc(CLEARING, detail, "treating", GUANGZHOU, "server_stream"),
                 grpc_code="OK") == 1
    assert grown("grpc_server_handled_total", **rpc(CLEARING, detail, "clearinghouse", "", "server_stream"),
                 grpc_code="OK") == 1
    assert grown("grpc_server_handling_seconds_count", **rpc(CLEARING, detail, "clearinghouse", "",
                                                             "server_stream")) == 1


async def test_every_series_names_its_party_and_region(kit):
    families = [family for family in REGISTRY.collect()
                if family.name.startswith(("grpc_server_", "grpc_client_", "clearing_"))]
    assert {family.name for family in families} >= {"grpc_server_handled", "grpc_client_handled",
                                                     "clearing_settlements", "clearing_prepayment_usage_ratio"}
    seen = set()
    for family in families:
        for sample in family.samples:
            assert {"party", "region"} <= set(sample.labels), sample
            if sample.labels["party"] == "test" or not sample.labels.get("grpc_service", "clearinghouse.v1.") \
                    .startswith("clearinghouse.v1."):
                continue  # a test's own servicer or reconciliation (other modules of this session)
            assert sample.labels["party"] in PARTIES, sample
            assert re.fullmatch(r"|[0-9]{6}", sample.labels["region"]), sample
            values = " ".join(sample.labels.values())  # bounded sets: methods, codes, regions, kinds; never an id
            assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-|H[0-9]{11}", values), sample
            seen.add(sample.labels["party"])
    assert seen >= {"treating", "insured", "clearinghouse"}


# ---------------------------------------------------------------------------------------------
# The dashboard and the alert rules name what is exported
# ---------------------------------------------------------------------------------------------
# Series Prometheus makes itself, not the services.
PROMETHEUS_SERIES = frozenset({"up"})
SCRAPE_LABELS = frozenset({"job", "instance", "role"})  # deploy/prometheus.yml and the stack's scrape targets
PROMQL_WORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                          "bool", "offset", "inf", "nan"})
IDENTIFIER = re.compile(r"(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)")
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
SELECTOR = re.compile(r"(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def exported() -> dict[str, set[str]]:
    """Every series name this process exports, with its label names: from the text exposition (`# TYPE` lines, so
    a labelled metric nobody has used yet counts too) and the samples' labels."""
    names: dict[str, set[str]] = {}
    for line in generate_latest(REGISTRY).decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            for suffix in (("_bucket", "_count", "_sum") if kind == "histogram" else ("",)):
                names.setdefault(name + suffix, set())
    for family in REGISTRY.collect():
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def metric_names(expr: str) -> set[str]:
    """The series an expression selects: identifiers that are not functions, keywords, grouping labels, label
    matchers, strings, ranges or Grafana variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "{}", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)
    text = GROUPING.sub(" ", text)
    return {match.group(1) for match in IDENTIFIER.finditer(text)
            if match.group(1).lower() not in PROMQL_WORDS and not text[match.end():].lstrip().startswith("(")}


def label_names(expr: str) -> tuple[dict[str, set[str]], set[str]]:
    """The label names each selector matches on, and those the expression groups by."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    matched: dict[str, set[str]] = {}
    for selector in SELECTOR.finditer(text):
        matched.setdefault(selector.group(1), set()).update(MATCHER.findall(selector.group(2)))
    grouped = {name.strip() for clause in GROUPING.finditer(text) for name in clause.group(2).split(",")
               if name.strip()}
    return matched, grouped


def check_expressions(expressions: list[str]) -> None:
    names = exported()
    assert expressions
    for expr in expressions:
        used = metric_names(expr)
        assert used, f"no metric found in {expr!r}"
        for name in used:
            assert name in names or name in PROMETHEUS_SERIES, f"{name!r} is not exported (in {expr!r})"
        matched, grouped = label_names(expr)
        known = set().union(*(names.get(name, set()) for name in used)) | {"le"} | SCRAPE_LABELS
        for name, labels in matched.items():
            if name in PROMETHEUS_SERIES:
                continue
            have = names[name] | {"le"} | SCRAPE_LABELS
            assert not names[name] or labels <= have, f"{name} has no label {labels - have} (in {expr!r})"
        if all(names.get(name) for name in used if name not in PROMETHEUS_SERIES):
            assert grouped <= known, f"grouped by {grouped - known}, which no series of {expr!r} has"


def dashboard_expressions(dashboard: dict) -> list[str]:
    panels = list(dashboard["panels"])
    for panel in dashboard["panels"]:
        panels.extend(panel.get("panels", []))  # inside a collapsed row
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def rule_expressions(text: str) -> list[str]:
    """The `expr:` of every rule in a Prometheus rules file, each on one line (no YAML library is installed here;
    a block scalar would be missed, so it is refused)."""
    found = []
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "expr":
            value = value.strip()
            assert value and value[0] not in "|>", f"write each expr on one line: {line!r}"
            found.append(value[1:-1] if value[0] in "'\"" else value)
    return found


def test_the_expression_reader_finds_metrics_and_labels():
    expr = ('histogram_quantile(0.99, sum by (le, region) (rate(grpc_server_handling_seconds_bucket'
            '{grpc_method="Settle", party=~"treating"}[$__rate_interval]))) > 2 and on(region) up == 1')
    assert metric_names(expr) == {"grpc_server_handling_seconds_bucket", "up"}
    assert label_names(expr) == ({"grpc_server_handling_seconds_bucket": {"grpc_method", "party"}},
                                 {"le", "region"})
    assert metric_names('sum(rate(x_total{a="b(c)"}[5m])) / ignoring(code) y') == {"x_total", "y"}


async def test_the_dashboard_queries_only_exported_metrics(kit):
    dashboard = json.loads((DEPLOY / "grafana" / "clearing-house.json").read_text())
    assert dashboard["schemaVersion"] >= 36 and dashboard["uid"] and dashboard["title"]
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for subject in ("settlements", "latency", "refusals", "prepayment", "reconciliation"):
        assert subject in titles, subject
    check_expressions(dashboard_expressions(dashboard))


async def test_the_alert_rules_query_only_exported_metrics(kit):
    check_expressions(rule_expressions((DEPLOY / "prometheus" / "alerts.yml").read_text()))



def test_the_readme_explains_every_metric_and_every_alert():
    """README "Logs, metrics and alerts" has a row for each metric the services define and each alert rule."""
    readme = (DEPLOY.parent / "README.md").read_text()
    section = readme[readme.index("## Logs, metrics and alerts"):]
    section = section[:section.index("\n## ", 1)]
    for line in generate_latest(REGISTRY).decode().splitlines():
        name = line.split()[2] if line.startswith("# TYPE ") else ""
        if name.startswith(("grpc_server_", "grpc_client_", "clearing_")) and not name.endswith("_created"):
            assert f"`{name}`" in section, name
    alerts = re.findall(r"^\s*- alert: (\w+)$", (DEPLOY / "prometheus" / "alerts.yml").read_text(), re.MULTILINE)
    assert alerts
    for alert in alerts:
        assert f"`{alert}`" in section, alert
