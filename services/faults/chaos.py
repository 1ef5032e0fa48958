"""Chaos: every few seconds (seeded) SIGKILL one service process and restart it after a short pause.

One victim at a time: the next kill waits until the last victim answers its health check again, so
a run never loses two parties by accident of timing. The clearing house, the one party every
cross-region settlement passes and the one with the ledger, is the victim a third of the time; a
region process (its treating and insured agency together) otherwise. The schedule (gaps, victims, pauses) comes from
the seed; when each kill lands relative to the calls in flight is timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from dataclasses import dataclass, field

from services.stack.processes import StackProcesses


@dataclass
class ChaosCounts:
    kills: int = 0
    by_role: dict[str, int] = field(default_factory=dict)


class Chaos:
    def __init__(self, stack: StackProcesses, hub: str, others: list[str], rng: random.Random,
                 gap_s: tuple[float, float] = (2.0, 5.0), pause_s: tuple[float, float] = (0.2, 1.5)) -> None:
        self.stack = stack
        self.hub = hub
        self.others = sorted(others)
        self.rng = rng
        self.gap_s = gap_s
        self.pause_s = pause_s
        self.counts = ChaosCounts()

    async def run(self, stop: asyncio.Event) -> None:
        """Kill and restart until `stop` is set; a restart under way is finished before returning."""
        while not stop.is_set():
            gap = self.rng.uniform(*self.gap_s)
            victim = self.hub if self.rng.randrange(3) == 0 else self.rng.choice(self.others)
            pause = self.rng.uniform(*self.pause_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), gap)
            if stop.is_set():
                return
            self.stack.kill(victim, signal.SIGKILL)
            self.counts.kills += 1
            self.counts.by_role[victim] = self.counts.by_role.get(victim, 0) + 1
            await asyncio.sleep(pause)
            self.stack.spawn(victim)
            await self.stack.wait_healthy(victim)

    async def heal(self) -> None:
        """Make sure every service runs and answers (for the settle-down phase)."""
        for role in self.stack.services:
            if not self.stack.running(role):
                self.stack.spawn(role)
        await asyncio.gather(*(self.stack.wait_healthy(role) for role in self.stack.services))
