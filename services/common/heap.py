"""Keeping the cyclic garbage collector off the long-lived data of a service.

A running party holds hundreds of thousands of objects that live as long as the process: parsed catalogues
(7,000 rows a region, indexed), the DRG tables, policies, the knowledge base. Python's full collections walk every
tracked object, so each one becomes a pause of tens of milliseconds that lands on whatever calls are in flight:
tests/integration/test_flood.py saw the others' p99 latency double under load from these pauses alone. `gc.freeze`
moves the objects alive now out of the collector's view; reference counting still frees them when they go.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Collect what is garbage now, then freeze everything still alive (after a start, after a catalogue parse)."""
    gc.collect()
    gc.freeze()
