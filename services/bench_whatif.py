"""Benchmark of the policy what-if replay (SPEC §12.5, issue 12 item 6): settlements replayed per second on one
core, target at least 10,000.

`python -m services.bench_whatif [settlements [members]]` prints one line; `bench_whatif()` also returns the
figures. The settlements are the demo generator's bills (about 32 lines each), classified with the treating
region's catalogue before the clock starts, spread over `members` members of 430100 and the twelve months of
2026, with one in fifty cancelled later; each stay's lines `condensed` as the command loads them; the replay is `clearing.whatif.replay` under the region's policy, as
`clearing-admin policy whatif` runs it (the self-check's replay; the draft's costs the same). CPU time, best of
`PASSES` passes, as services/bench_core.py measures.
"""

from __future__ import annotations

import random
import statistics
import sys
from dataclasses import replace
from datetime import date, timedelta

from clearing.catalogue import parse_catalogue_csv
from clearing.classify import classify_bill
from clearing.member import Member, Ytd
from clearing.policy import AssistanceTier, FilingStatus, Scheme
from clearing.quote import stay_facts
from clearing.whatif import Recorded, condensed, replay
from services.bench_core import SEED, TREATING_REGION, INSURED_REGION, cpu_seconds, generated_bills
from services.common.regions import load_policy_book
from services.stack.enrol import catalogue_csv_text

PASSES = 5
DEMO_SIZE_PCT = 100  # the demo's bills: about 32 lines


def recorded_settlements(count: int, members: int) -> tuple[list[Recorded], float]:
    """`count` settlements of `members` members over 2026, in recording order; split and ytd left empty (the
    benchmark times the replay, not the self-check's comparison), and the bills' lines per stay before condensing."""
    catalogue = parse_catalogue_csv(catalogue_csv_text(TREATING_REGION, SEED), TREATING_REGION)
    bills = generated_bills(min(count, 500), DEMO_SIZE_PCT)  # classified once, reused: the replay's cost is the same
    classified = [classify_bill(bill, catalogue) for bill in bills]
    lines_per_stay = sum(map(len, classified)) / len(classified)
    classified = [(condensed(lines), stay_facts(bill)) for lines, bill in zip(classified, bills)]
    draw = random.Random(SEED)
    people = [Member(INSURED_REGION, f"M{index:06d}", draw.choice(list(Scheme)), draw.random() < 0.3,
                     draw.random() < 0.05, draw.choice([None, None, None, AssistanceTier.DIBAO]),
                     draw.choice(list(FilingStatus))) for index in range(members)]
    settlements = []
    for index in range(count):
        lines, facts = classified[index % len(classified)]
        discharged_on = date(2026, 1, 1) + timedelta(days=index * 365 // count)
        facts = replace(facts, admitted_on=discharged_on - timedelta(days=5), discharged_on=discharged_on)
        undone = 2 * index + 3 if draw.random() < 0.02 else None
        settlements.append(Recorded(f"s{index}", draw.choice(people), facts, lines, 2 * index + 1, undone, {}, Ytd()))
    return settlements, lines_per_stay


def bench_whatif(count: int = 20_000, members: int = 2_000) -> dict[str, float]:
    """Time `replay` over `count` settlements; print the line and return the figures."""
    settlements, lines = recorded_settlements(count, members)
    book = load_policy_book(INSURED_REGION)
    policy = book.on(date(2026, 12, 31))
    rates = [count / cpu_seconds(lambda: replay(settlements, lambda item: policy)) for _ in range(PASSES)]
    figures = {"settlements_per_s_per_core": max(rates), "median_per_s": statistics.median(rates),
               "lines_per_settlement": lines}
    print(f"policy what-if replay ({lines:.0f}-line stays, {members:,} members, 2026): "
          f"{figures['settlements_per_s_per_core']:,.0f} settlements/s on one core (CPU time; best of {PASSES} "
          f"passes over {count:,}, median {figures['median_per_s']:,.0f}/s)", flush=True)
    return figures


if __name__ == "__main__":
    bench_whatif(*(int(argument) for argument in sys.argv[1:3]))
