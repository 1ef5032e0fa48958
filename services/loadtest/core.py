"""The core line of the bench: how fast the pure core quotes a bill (classify + adjudicate), per CPU second.

The one place the harness asks for it. `services/bench_core.py::bench_core(bills) -> {"bills_per_s_per_core": …}`
is being written on another branch; until it lands, `services/bench.py::bench_core` (the figure `make bench` has
printed so far, now also returned) stands in. The import below takes the new module as soon as it exists, and the
report names which one answered (`core.source`).
"""

from __future__ import annotations

from typing import Any


def core_line(bills: int) -> dict[str, Any]:
    try:
        from services.bench_core import bench_core  # noqa: PLC0415 - not on every branch yet
        source = "services.bench_core"
    except ModuleNotFoundError as error:
        if error.name != "services.bench_core":
            raise  # the module exists and something it imports does not: a real error
        from services.bench import bench_core  # noqa: PLC0415
        source = "services.bench (stand-in until services.bench_core lands)"
    result = dict(bench_core(bills))
    assert result["bills_per_s_per_core"] > 0
    result["source"] = source
    return result
