"""Seeded, documented generators of demo data (SPEC §4.1): regional catalogues, members and bills.

Everything here is deterministic for its seed: the same (region, seed) gives byte-identical
output on every machine, because each generator owns a `random.Random` seeded with a string
and never touches the global `random` state or the clock. Real national lists come from
`reference/` (see its README); the regional variation on top of them is invented, and each
module's docstring says how.
"""
