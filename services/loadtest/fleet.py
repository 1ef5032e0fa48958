"""The harness's side of the load generators: a few `services.loadtest.driver` processes, driven over pipes.

The generators run as processes of their own so that their CPU is neither the harness's nor the stack's, and so
that two of them use both cores' worth of event loops when the stack is fast. Each builds its own part of the
template pool (`first` = its number × the pool size) while the stack starts. A phase is given to all of them with
one absolute window, and their tallies are merged.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STREAM_LIMIT_BYTES = 1 << 26  # one answer holds every latency of a phase
START_LEAD_S = 0.5  # a phase starts this long after it is sent, so every generator has it by then
STOP_WAIT_S = 10.0


@dataclass
class Fleet:
    """`count` generator processes; `start()`, then `init`, `connect`, phases, `stop()`."""

    count: int
    log_path: Path
    processes: list[asyncio.subprocess.Process] | None = None

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes or []]

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self.processes = [await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.loadtest.driver", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=log_file, limit=STREAM_LIMIT_BYTES)
                for _ in range(self.count)]

    async def ask(self, index: int, command: dict[str, Any]) -> dict[str, Any]:
        assert self.processes is not None
        process = self.processes[index]
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write((json.dumps(command) + "\n").encode())
        await process.stdin.drain()
        line = await process.stdout.readline()
        if not line:
            raise RuntimeError(f"load generator {index} exited with {await process.wait()}; see {self.log_path}")
        return json.loads(line)

    async def ask_all(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self.ask(index, command) for index, command in enumerate(commands))))

    async def init(self, seed: int, templates_each: int, members_per_region: int, month_start: str, lines_mean: int,
                   certs_dir: str) -> int:
        answers = await self.ask_all([
            {"cmd": "init", "seed": seed, "templates": templates_each, "first": index * templates_each,
             "members_per_region": members_per_region, "month_start": month_start, "lines_mean": lines_mean,
             "certs_dir": certs_dir} for index in range(self.count)])
        return sum(answer["ready"] for answer in answers)

    async def connect(self, addresses: dict[str, str]) -> None:
        await self.ask_all([{"cmd": "connect", "addresses": addresses}] * self.count)

    def window(self, ramp_s: float, duration_s: float) -> tuple[float, float, float]:
        """(start, measured from, measured to) in monotonic seconds: a ramp, then the measured window."""
        start_at = time.monotonic() + START_LEAD_S
        return start_at, start_at + ramp_s, start_at + ramp_s + duration_s

    async def open_loop(self, rate_per_s: float, in_flight_max: int, start_at: float, measure_from: float,
                        measure_to: float) -> dict[str, Any]:
        """`rate_per_s` and `in_flight_max` in all, each generator its share, their schedules interleaved."""
        share = rate_per_s / self.count
        answers = await self.ask_all([
            {"cmd": "open", "rate_per_s": share, "first_offset_s": index / rate_per_s,
             "in_flight_max": max(1, in_flight_max // self.count), "start_at": start_at,
             "measure_from": measure_from, "measure_to": measure_to} for index in range(self.count)])
        return merge(answers)

    async def closed_loop(self, clients: int, start_at: float, measure_from: float,
                          measure_to: float) -> dict[str, Any]:
        """`clients` in all, spread over the generators."""
        shares = [clients // self.count + (1 if index < clients % self.count else 0) for index in range(self.count)]
        answers = await self.ask_all([
            {"cmd": "closed", "clients": share, "start_at": start_at, "measure_from": measure_from,
             "measure_to": measure_to} for share in shares if share > 0])
        return merge(answers)

    async def stop(self) -> None:
        """Ask every generator to exit; kill one that does not within STOP_WAIT_S."""
        for process in self.processes or []:
            if process.returncode is None and process.stdin is not None:
                try:
                    process.stdin.write(b'{"cmd": "exit"}\n')
                    await process.stdin.drain()
                    process.stdin.close()
                except (BrokenPipeError, ConnectionResetError):
                    pass
        for process in self.processes or []:
            try:
                await asyncio.wait_for(process.wait(), STOP_WAIT_S)
            except TimeoutError:
                process.kill()
                await process.wait()


def merge(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """The tallies of several generators as one: counts added, latency lists joined, maxima summed (each
    generator's in-flight maximum is its own)."""
    merged: dict[str, Any] = {"settled": 0, "refused": Counter(), "failed": Counter(), "errors": {}, "settle_ms": [],
                              "discharge_ms": [], "step_ms": {}, "lines": 0, "cross_region": 0, "offered": 0,
                              "offered_done": 0, "late_starts": 0, "dropped": 0, "in_flight_max": 0, "unfinished": 0}
    for answer in answers:
        for key in ("settled", "lines", "cross_region", "offered", "offered_done", "late_starts", "dropped",
                    "in_flight_max", "unfinished"):
            merged[key] += answer[key]
        merged["refused"].update(answer["refused"])
        merged["failed"].update(answer["failed"])
        for key, samples in answer["errors"].items():
            merged["errors"].setdefault(key, []).extend(samples)
        merged["settle_ms"].extend(answer["settle_ms"])
        merged["discharge_ms"].extend(answer["discharge_ms"])
        for step, values in answer["step_ms"].items():
            merged["step_ms"].setdefault(step, []).extend(values)
    merged["refused"], merged["failed"] = dict(merged["refused"]), dict(merged["failed"])
    return merged
