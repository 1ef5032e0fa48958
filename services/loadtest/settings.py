"""The load harness's knobs: each a command-line flag, an environment variable and a default (in that order).

The defaults keep the whole of `make bench` (stack start, both phases, the floor, the core line and the 1 M
month close) under 5 minutes on 2 cores. A value out of range or not a number is a `SettingsError` naming the flag
or variable; the entry points print it and exit 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


class SettingsError(ValueError):
    """A knob with a bad value; its text names it."""


@dataclass(frozen=True)
class Knob:
    name: str  # the Settings field
    variable: str
    kind: type
    low: float
    high: float
    help: str


KNOBS = (
    Knob("duration_s", "BENCH_DURATION_S", float, 1, 3600, "measured seconds of each phase (fixed rate, saturation)"),
    Knob("warmup_s", "BENCH_WARMUP_S", float, 0, 600, "seconds at the fixed rate before it is measured"),
    Knob("rate_per_s", "BENCH_RATE", float, 0.1, 10_000, "discharges started per second in the fixed-rate phase"),
    Knob("clients", "BENCH_CLIENTS", int, 1, 1024, "concurrent HIS clients at saturation (closed loop)"),
    Knob("in_flight_max", "BENCH_IN_FLIGHT_MAX", int, 1, 100_000,
         "fixed rate: discharges in flight at most (beyond, a start is dropped and counted)"),
    Knob("drivers", "BENCH_DRIVERS", int, 1, 16, "load generator processes"),
    Knob("members_per_region", "BENCH_MEMBERS", int, 1, 10_000, "members enrolled per region"),
    Knob("templates", "BENCH_TEMPLATES", int, 1, 100_000, "ready-made discharges per generator"),
    Knob("lines_mean", "BENCH_LINES", int, 10, 1_000, "average lines per bill"),
    Knob("floor_duration_s", "BENCH_FLOOR_DURATION_S", float, 1, 3600, "measured seconds of each floor mode"),
    Knob("floor_warmup_s", "BENCH_FLOOR_WARMUP_S", float, 0, 600, "seconds of each floor mode before it is measured"),
    Knob("core_bills", "BENCH_CORE_BILLS", int, 1, 1_000_000, "bills quoted by the pure core for the core line"),
    Knob("seed", "BENCH_SEED", int, 0, 2**31 - 1, "seed of the catalogues, members and discharges"),
    Knob("workers", "BENCH_WORKERS", int, 1, 16,
         "processes serving the clearing house and each region, sharing its port (SO_REUSEPORT)"),
)
RAMP_S = 2.0  # saturation: clients start this long before the window opens, so it opens on a full stack


@dataclass(frozen=True)
class Settings:
    duration_s: float = 12.0
    warmup_s: float = 4.0
    rate_per_s: float = 200.0
    clients: int = 48
    # A stack slower than the offered rate would otherwise gather thousands of discharges in flight, every call
    # would time out and be retried, and what it settles would collapse to a trickle (seen: 2.5/s at 200/s offered
    # against 24/s at saturation): the cap keeps the queue to a few seconds' worth and counts the rest as dropped.
    in_flight_max: int = 160
    drivers: int = 2
    members_per_region: int = 100
    templates: int = 300
    lines_mean: int = 50
    floor_duration_s: float = 6.0
    floor_warmup_s: float = 2.0
    core_bills: int = 2_000
    seed: int = 2026
    workers: int = 1
    json_path: Path = REPOSITORY / "var/bench/latest.json"
    markdown_path: Path = REPOSITORY / "docs/benchmarks.md"
    insecure: bool = False  # plaintext gRPC everywhere, to see what TLS costs (BENCH_INSECURE=1)

    def to_json(self) -> dict:
        return {item.name: str(value) if isinstance(value := getattr(self, item.name), Path) else value
                for item in fields(self)}


def parse_value(knob: Knob, text: str, source: str) -> float | int:
    try:
        value = knob.kind(text.strip().replace("_", ""))
    except ValueError:
        raise SettingsError(f"{source}: {text!r} is not {'a whole number' if knob.kind is int else 'a number'}") from None
    if not knob.low <= value <= knob.high:
        raise SettingsError(f"{source}: {text!r} is out of range ({knob.low:g} to {knob.high:g})")
    return value


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog="python -m services.loadtest", description="Load harness: the stack as processes under load, and its "
        "floor; prints the figures and writes them to --json and a row of --markdown.")
    for knob in KNOBS:
        result.add_argument(f"--{knob.name.replace('_', '-')}", metavar="N", help=f"{knob.help} (${knob.variable})")
    result.add_argument("--json", metavar="PATH", help="where the results go ($BENCH_JSON; var/bench/latest.json)")
    result.add_argument("--markdown", metavar="PATH", help="the table a row is appended to ($BENCH_MARKDOWN; "
                        "docs/benchmarks.md)")
    result.add_argument("--insecure", action="store_true", default=None, help="plaintext gRPC ($BENCH_INSECURE=1)")
    return result


def parse_settings(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Flags over environment variables over defaults. argparse itself exits 2 on an unknown flag."""
    arguments = parser().parse_args(list(argv))
    values: dict[str, object] = {}
    for knob in KNOBS:
        flag = getattr(arguments, knob.name)
        if flag is not None:
            values[knob.name] = parse_value(knob, flag, f"--{knob.name.replace('_', '-')}")
        elif environ.get(knob.variable, "").strip():
            values[knob.name] = parse_value(knob, environ[knob.variable], knob.variable)
    for name, flag, variable in (("json_path", arguments.json, "BENCH_JSON"),
                                 ("markdown_path", arguments.markdown, "BENCH_MARKDOWN")):
        text = flag if flag is not None else environ.get(variable, "").strip()
        if text:
            values[name] = Path(text)
    insecure_text = environ.get("BENCH_INSECURE", "").strip()
    if insecure_text not in ("", "0", "1"):
        raise SettingsError(f"BENCH_INSECURE: {insecure_text!r} is not 0 or 1")
    values["insecure"] = bool(arguments.insecure) or insecure_text == "1"
    return Settings(**values)  # type: ignore[arg-type]
