"""The fault harness's TCP proxy (services/faults/proxy.py) against a tiny echo server: clean
pass-through, a cut mid-stream, a delay, and a target that is down."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from services.faults.proxy import FaultProxy, FaultRates

PAYLOAD = bytes(range(256)) * 64  # 16 KiB


@pytest.fixture
async def echo_port():
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(4096):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def proxy_to(port: int, rates: FaultRates, faulty: bool = True, seed: int = 1) -> FaultProxy:
    proxy = FaultProxy("test", "127.0.0.1", port, random.Random(seed), rates)
    proxy.faulty = faulty
    await proxy.start()
    return proxy


async def round_trip(proxy: FaultProxy, payload: bytes) -> bytes:
    """Send `payload`, half-close, read until the proxy closes or EOF; whatever came back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    received = b""
    try:
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        while chunk := await asyncio.wait_for(reader.read(65536), timeout=5):
            received += chunk
    except ConnectionError:
        pass
    finally:
        writer.close()
    return received


async def test_pass_through_returns_every_byte_and_counts_no_fault(echo_port):
    proxy = await proxy_to(echo_port, FaultRates(cut_bp=10_000, delay_bp=0), faulty=False)
    try:
        assert await round_trip(proxy, PAYLOAD) == PAYLOAD
    finally:
        await proxy.close()
    assert (proxy.counts.connections, proxy.counts.cuts, proxy.counts.delays) == (1, 0, 0)


async def test_a_cut_closes_the_connection_mid_stream(echo_port):
    proxy = await proxy_to(echo_port, FaultRates(cut_bp=10_000, delay_bp=0))
    try:
        received = await round_trip(proxy, PAYLOAD)
    finally:
        await proxy.close()
    assert len(received) < len(PAYLOAD)
    assert PAYLOAD.startswith(received)  # what got through is an intact prefix
    assert proxy.counts.cuts == 1


async def test_a_delay_holds_the_bytes_back_and_loses_none(echo_port):
    proxy = await proxy_to(echo_port, FaultRates(cut_bp=0, delay_bp=10_000, delay_max_ms=120))
    try:
        started = time.monotonic()
        received = await round_trip(proxy, b"hello")
        elapsed = time.monotonic() - started
    finally:
        await proxy.close()
    assert received == b"hello"
    assert proxy.counts.delays >= 2  # once each way
    assert elapsed <= 2.0


async def test_switching_faults_off_makes_it_clean_again(echo_port):
    proxy = await proxy_to(echo_port, FaultRates(cut_bp=10_000, delay_bp=0))
    try:
        assert await round_trip(proxy, PAYLOAD) != PAYLOAD
        proxy.faulty = False
        assert await round_trip(proxy, PAYLOAD) == PAYLOAD
    finally:
        await proxy.close()
    assert proxy.counts.cuts == 1


async def test_a_target_that_is_down_closes_the_client_at_once():
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proxy = await proxy_to(port, FaultRates(), faulty=False)
    try:
        assert await round_trip(proxy, b"anyone?") == b""
    finally:
        await proxy.close()
    assert proxy.counts.refused == 1


def test_the_same_seed_draws_the_same_decisions():
    rates = FaultRates(cut_bp=2_000, delay_bp=3_000)
    first, second = (FaultProxy("a", "127.0.0.1", 1, random.Random(5), rates) for _ in range(2))
    first.faulty = second.faulty = True
    assert [first.decide(1000) for _ in range(200)] == [second.decide(1000) for _ in range(200)]
