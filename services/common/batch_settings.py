"""How the parties batch settlements between them (services/common/batching.py), from the stack's configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BATCH_CLAIMS_MAX = 1000  # claims in one batch, as the protos say


@dataclass(frozen=True)
class BatchSettings:
    """How a sender batches: a batch leaves when it holds `size_max` claims or its first claim has waited
    `wait_ms`. `enabled` false: every claim goes as its own unary call, as before batching existed."""

    enabled: bool = True
    size_max: int = 64
    wait_ms: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValueError(f"batching.enabled must be true or false, got {self.enabled!r}")
        if not isinstance(self.size_max, int) or not 1 <= self.size_max <= BATCH_CLAIMS_MAX:
            raise ValueError(f"batching.size_max must be a whole number from 1 to {BATCH_CLAIMS_MAX}, "
                             f"got {self.size_max!r}")
        if not isinstance(self.wait_ms, int) or not 0 <= self.wait_ms <= 1000:
            raise ValueError(f"batching.wait_ms must be a whole number of ms from 0 to 1000, got {self.wait_ms!r}")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BatchSettings:
        """From the configuration's `batching` object (ValueError naming an unknown or malformed entry)."""
        unknown = sorted(set(config) - {"enabled", "size_max", "wait_ms"})
        if unknown:
            raise ValueError(f"batching.{unknown[0]} is not a setting (enabled, size_max, wait_ms)")
        return cls(**config)
