"""Command line for the demo-data generators: `python -m services.datagen <command> …`.

Commands (all deterministic for their seeds):

* `catalogues --seed 2026 --out DIR [--region CODE …]` writes `DIR/<region>.csv` (SPEC §4.1)
  for every demo region (or the given ones) and prints each file's row count;
* `members --region CODE --count N --seed S --out FILE` writes a JSON list of members
  (SPEC §5.3 M.json shape plus `id_number` and `name`);
* `bills --region CODE --count N --seed S --out DIR [--catalogue-seed 2026]` writes
  `DIR/<region>-<n>.json` bills (SPEC §5.3 B.json) at the region's own hospitals, admitted on
  days of 2026, priced from the region's catalogue generated with `--catalogue-seed`;
* `knowledge --seed 2026 --out FILE` writes the smart-audit knowledge base (SPEC §12.1,
  `knowledge.py`), one for every region: it is keyed by national code.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

from services.datagen.bills import CatalogueIndex, generate_bill
from services.datagen.catalogue import generate_catalogue_rows, write_catalogue_csv
from services.datagen.knowledge import generate_knowledge_rows, write_knowledge_csv
from services.datagen.population import generate_members
from services.datagen.regions import demo_region_codes, load_regions

BILLS_FIRST_ADMISSION_ON = date(2026, 1, 1)
BILLS_ADMISSION_DAYS = 340  # admissions spread over 2026, leaving room for the longest stay


def _catalogues(args: argparse.Namespace) -> int:
    regions = args.region or list(demo_region_codes())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for region in regions:
        count = write_catalogue_csv(generate_catalogue_rows(region, args.seed), out / f"{region}.csv")
        print(f"{region}.csv\t{count} rows")
    print(f"{len(regions)} catalogues in {time.perf_counter() - started:.2f} s", file=sys.stderr)
    return 0


def _members(args: argparse.Namespace) -> int:
    members = generate_members(args.region, args.count, args.seed)
    Path(args.out).write_text(json.dumps(members, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(members)} members of {args.region} -> {args.out}")
    return 0


def _bills(args: argparse.Namespace) -> int:
    regions = {region.code: region for region in load_regions()}
    if args.region not in regions:
        print(f"--region: {args.region} is not a demo region ({', '.join(regions)})", file=sys.stderr)
        return 2
    region = regions[args.region]
    index = CatalogueIndex(generate_catalogue_rows(region.code, args.catalogue_seed))
    rng = random.Random(f"{region.code}:bills:{args.seed}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for number in range(1, args.count + 1):
        hospital = rng.choice(region.hospitals)
        admitted_on = BILLS_FIRST_ADMISSION_ON + timedelta(days=rng.randrange(BILLS_ADMISSION_DAYS))
        bill = generate_bill(rng, index, region.code, hospital.code, hospital.level, admitted_on)
        path = out / f"{region.code}-{number:04d}.json"
        path.write_text(json.dumps(bill, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{args.count} bills of {region.code} -> {out}")
    return 0


def _knowledge(args: argparse.Namespace) -> int:
    count = write_knowledge_csv(generate_knowledge_rows(args.seed), args.out)
    print(f"knowledge base: {count} rows -> {args.out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.datagen", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    catalogues = commands.add_parser("catalogues", help="write one catalogue CSV per region")
    catalogues.add_argument("--seed", type=int, required=True)
    catalogues.add_argument("--out", required=True, help="output directory")
    catalogues.add_argument("--region", action="append", help="a region code (repeatable); default: all demo regions")
    catalogues.set_defaults(run=_catalogues)

    members = commands.add_parser("members", help="write members of one insured region as JSON")
    members.add_argument("--region", required=True)
    members.add_argument("--count", type=int, required=True)
    members.add_argument("--seed", type=int, required=True)
    members.add_argument("--out", required=True, help="output file")
    members.set_defaults(run=_members)

    bills = commands.add_parser("bills", help="write inpatient bills at one region's hospitals as JSON")
    bills.add_argument("--region", required=True)
    bills.add_argument("--count", type=int, required=True)
    bills.add_argument("--seed", type=int, required=True)
    bills.add_argument("--out", required=True, help="output directory")
    bills.add_argument("--catalogue-seed", type=int, default=2026)
    bills.set_defaults(run=_bills)

    knowledge = commands.add_parser("knowledge", help="write the smart-audit knowledge base (知识库) CSV")
    knowledge.add_argument("--seed", type=int, required=True)
    knowledge.add_argument("--out", required=True, help="output file")
    knowledge.set_defaults(run=_knowledge)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status is 0 on success and 2 for bad arguments."""
    args = _parser().parse_args(argv)
    if getattr(args, "count", 0) < 0:
        print("--count: must be >= 0", file=sys.stderr)
        return 2
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
