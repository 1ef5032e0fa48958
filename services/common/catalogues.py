"""Parsed catalogue versions kept in memory: a version never changes, so parsing once is enough."""

from __future__ import annotations

import hashlib

from clearing.catalogue import Catalogue, parse_catalogue_csv


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CatalogueCache:
    """The newest known version of each region's catalogue, parsed."""

    def __init__(self) -> None:
        self.latest: dict[str, tuple[int, Catalogue]] = {}

    def put(self, region: str, version: int, csv_text: str) -> Catalogue:
        known = self.latest.get(region)
        if known is not None and known[0] >= version:
            return known[1]
        catalogue = parse_catalogue_csv(csv_text, region)
        self.latest[region] = (version, catalogue)
        return catalogue

    def get(self, region: str) -> tuple[int, Catalogue] | None:
        return self.latest.get(region)
