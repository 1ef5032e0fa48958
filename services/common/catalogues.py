"""Parsed catalogue versions kept in memory.

A version never changes once imported, so each process parses it once. Which version is *current* is
not kept here: a party reads it from its own database on every request (one indexed lookup), so every
process of a party classifies with the same version the moment an import commits (issue 9, item 14),
however many processes serve the party.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from clearing.catalogue import Catalogue, parse_catalogue_csv
from services.common.heap import freeze_long_lived

# A party needs the current version of each region and, for a while, the one before it (claims classified
# just before an import); a few more cover a burst of imports. Bounded so memory cannot grow with imports.
VERSIONS_KEPT_MAX = 16


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# Parsed texts by (region, digest), shared by the parties of one process: a clearing house and a treating agency
# in one process (a test stack, a single-machine deployment) import the same CSV text and need not parse it twice
# (about half a second for a region's 7,000 rows). A Catalogue is immutable, so sharing it is safe.
_PARSED: OrderedDict[tuple[str, str], Catalogue] = OrderedDict()


def parsed_catalogue(csv_text: str, region: str) -> Catalogue:
    """`parse_catalogue_csv(csv_text, region)`, parsed once per process for the same text (errors are not kept:
    a bad text is parsed, and refused, every time)."""
    key = (region, sha256_of(csv_text))
    found = _PARSED.get(key)
    if found is not None:
        _PARSED.move_to_end(key)
        return found
    catalogue = parse_catalogue_csv(csv_text, region)
    _PARSED[key] = catalogue
    while len(_PARSED) > VERSIONS_KEPT_MAX:
        _PARSED.popitem(last=False)
    freeze_long_lived()  # a version lives long: keep its rows out of the collector's full walks
    return catalogue


class CatalogueVersions:
    """Parsed catalogues by (region, version), least recently used dropped first."""

    def __init__(self, kept_max: int = VERSIONS_KEPT_MAX) -> None:
        assert kept_max > 0
        self.kept_max = kept_max
        self.parsed: OrderedDict[tuple[str, int], Catalogue] = OrderedDict()

    def put(self, region: str, version: int, csv_text: str) -> Catalogue:
        """Parse and keep a version (a version already kept is not parsed again)."""
        key = (region, version)
        if key in self.parsed:
            self.parsed.move_to_end(key)
            return self.parsed[key]
        return self.keep(region, version, parsed_catalogue(csv_text, region))

    def keep(self, region: str, version: int, catalogue: Catalogue) -> Catalogue:
        """Keep a version parsed elsewhere (an import that has just validated it)."""
        assert version > 0 and catalogue.region == region
        key = (region, version)
        self.parsed[key] = catalogue
        self.parsed.move_to_end(key)
        while len(self.parsed) > self.kept_max:
            self.parsed.popitem(last=False)
        return catalogue

    async def get(self, region: str, version: int, load_text: Callable[[], Awaitable[str]]) -> Catalogue:
        """Version `version` of `region`, parsed; `load_text` fetches its CSV when it is not in memory."""
        key = (region, version)
        if key in self.parsed:
            self.parsed.move_to_end(key)
            return self.parsed[key]
        return self.put(region, version, await load_text())
