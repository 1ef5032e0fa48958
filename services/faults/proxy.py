"""A small fault-injecting TCP proxy (loopback): listen on a port, forward each connection to a target.

With faults on, every chunk read from either side draws from the proxy's seeded `random.Random`:
cut (write a random prefix of the chunk, then close both sides: a connection dropped mid-call),
delay (hold the chunk, and so everything behind it, 0…`delay_max_ms`), stall (hold it long enough
that the caller's deadline may expire while the callee carries on), or pass. With faults off it
is a clean pass-through. A target that is down (a killed service) closes the client's connection at
once, as a refused connection would.

The draws are seeded, but which chunk meets which draw depends on timing (how the kernel splits
the bytes, which connection reads first), so a seed fixes the schedule of decisions, not the
exact calls they hit.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class FaultRates:
    """Per-chunk odds in basis points (10000 = always) and the longest delay."""

    cut_bp: int = 40
    delay_bp: int = 300
    delay_max_ms: int = 300
    stall_bp: int = 5
    stall_max_ms: int = 3000


@dataclass
class ProxyCounts:
    connections: int = 0
    refused: int = 0  # the target was down
    cuts: int = 0
    delays: int = 0
    stalls: int = 0


class FaultProxy:
    """`await start()` → `address`; `faulty` switches faults on and off; `await close()`."""

    def __init__(self, name: str, target_host: str, target_port: int, rng: random.Random,
                 rates: FaultRates = FaultRates()) -> None:  # noqa: B008 - frozen, shared safely
        self.name = name
        self.target = (target_host, target_port)
        self.rng = rng
        self.rates = rates
        self.faulty = False
        self.counts = ProxyCounts()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.handlers: set[asyncio.Task] = set()
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> str:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.address

    async def close(self) -> None:
        """Stop listening, drop every connection and wait for their handlers to end."""
        if self.server is not None:
            self.server.close()
            for writer in list(self.writers):
                writer.transport.abort()
            if self.handlers:
                await asyncio.wait(self.handlers, timeout=5)
            await self.server.wait_closed()
            self.server = None

    def decide(self, size: int) -> tuple[str, float | int]:
        """One draw per chunk: ("cut", bytes to let through), ("delay" or "stall", seconds) or ("pass", 0)."""
        if not self.faulty:
            return "pass", 0
        rates = self.rates
        roll = self.rng.randrange(10_000)
        if roll < rates.cut_bp:
            return "cut", self.rng.randrange(size)
        if roll < rates.cut_bp + rates.delay_bp:
            return "delay", self.rng.randrange(rates.delay_max_ms + 1) / 1000
        if roll < rates.cut_bp + rates.delay_bp + rates.stall_bp:
            return "stall", self.rng.randrange(rates.delay_max_ms, rates.stall_max_ms + 1) / 1000
        return "pass", 0

    async def serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self.handlers.add(handler)
        handler.add_done_callback(self.handlers.discard)
        self.counts.connections += 1
        self.writers.add(client_writer)
        try:
            target_reader, target_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self.counts.refused += 1
            self.writers.discard(client_writer)
            client_writer.transport.abort()
            return
        self.writers.add(target_writer)
        pair = (client_writer, target_writer)
        try:
            await asyncio.gather(self.pump(client_reader, target_writer, pair),
                                 self.pump(target_reader, client_writer, pair))
        finally:
            for writer in pair:
                self.writers.discard(writer)
                writer.transport.abort()

    async def pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter]) -> None:
        """Copy one direction chunk by chunk until EOF, an error or a cut (which ends both directions)."""
        try:
            while chunk := await reader.read(CHUNK_BYTES):
                action, amount = self.decide(len(chunk))
                if action == "cut":
                    self.counts.cuts += 1
                    writer.write(chunk[:int(amount)])
                    await writer.drain()
                    for side in pair:
                        side.transport.abort()
                    return
                if action in ("delay", "stall"):
                    if action == "delay":
                        self.counts.delays += 1
                    else:
                        self.counts.stalls += 1
                    await asyncio.sleep(amount)
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            for side in pair:
                side.transport.abort()
