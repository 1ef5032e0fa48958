"""Run the stack as separate processes on one machine: the database first, then the clearing house,
one process per region and the HIS simulator, each checked healthy before it counts as up.

The launcher owns the embedded Postgres; services are children it stops with SIGTERM (and
SIGKILL after a grace period), so killing a service never takes the database with it.

Every service serves and dials mutual TLS: `prepare()` makes (or keeps: it is idempotent) the stack's
certificate directory `work_dir/certs` — the development CA, the clearing house, every region's agency, every
hospital, the HIS simulator and the operator — and records it in `stack.json`; the health checks dial as the
operator. `insecure=True` (`--insecure`) runs plaintext instead, and every service warns at start.

Each service serves its Prometheus metrics on a port of its own (`metrics_ports` in `stack.json`), listed for
Prometheus in `work_dir/prometheus_targets.json` (file_sd; deploy/prometheus.yml reads it).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common import clock
from services.common.db import ensure_database
from services.common.regions import load_regions
from services.insured.keys import ensure_member_keys
from services.security import certs
from services.stack.config import CERTS_SUBDIR, DEFAULT_OPERATOR, StackConfig, operator_identity, process_name
from services.stack.database import Database

HEALTH_WAIT_S = 60.0
STOP_WAIT_S = 10.0


async def wait_until_serving(channel: grpc.aio.Channel, process: subprocess.Popen, name: str, logs: str,
                             wait_s: float) -> None:
    """Until the server `process` runs answers its health check on `channel` (a failed handshake reads as not up);
    RuntimeError naming `name` and where its `logs` are when it exits or is not up within `wait_s`."""
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + wait_s
    while True:  # bounded by the deadline
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {logs}")
        try:
            answer = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
            if answer.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not become healthy; see {logs}")
        await asyncio.sleep(0.1)


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (net.ipv4.ip_local_port_range), 32768 where it cannot be read."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


SERVER_PORT_LOW = 20000
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port nobody listens on, for a server about to start.

    Drawn below the kernel's ephemeral range: a port the kernel hands a probe is free again the moment the probe
    closes, and the next outgoing connection of any process may take it before the server binds it (seen in a full
    test run: a stack's region exited at start, its port taken). Ports this process handed out are not handed out
    again."""
    high = max(_ephemeral_low(), SERVER_PORT_LOW + 1000)
    draw = random.SystemRandom()
    for _ in range(2000):  # bounded: the range holds thousands of ports, a busy machine uses a few hundred
        port = draw.randrange(SERVER_PORT_LOW, high)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port in {SERVER_PORT_LOW}–{high - 1}")


SCRAPE_TARGETS = "prometheus_targets.json"


def write_scrape_targets(path: Path, metrics_ports: dict[str, int]) -> None:
    """Prometheus file_sd targets: each service process's metrics address, labelled with its `role` (the ports
    change with every start, so a static list would not do)."""
    groups = [{"targets": [f"127.0.0.1:{port}"], "labels": {"role": role}} for role, port in sorted(metrics_ports.items())]
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(groups, indent=2) + "\n")
    temporary.replace(path)  # Prometheus may read it at any moment: never half written


@dataclass
class ServiceProcess:
    role: str
    port: int
    log_path: Path
    process: subprocess.Popen | None = None
    worker: int = 0  # its number among the role's processes (`StackConfig.workers`), which share `port`
    ready_path: Path | None = None  # the process writes it once it serves (services/stack/serve.py)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class StackProcesses:
    """The whole stack as child processes; `start()` then `stop()`."""

    work_dir: Path
    seed: int = 2026
    members_per_region: int = 200
    fresh: bool = True
    # None: `prepare()` starts the database in `work_dir/pgdata` and `stop()` stops it (this process owns it);
    # given: the caller's, borrowed (a test session's), left running by `stop()`.
    database: Database | None = None
    config: StackConfig | None = None
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    # The services' clock file (CLEARING_CLOCK_FILE, services/common/clock.py): a demo or a test that lives
    # through months moves every service's clock at once with `move_clock_to`. None: the system clock.
    clock_file: Path | None = None
    # Plaintext gRPC everywhere (`--insecure`); by default every party speaks mutual TLS.
    insecure: bool = False
    # The operator this launcher (health checks) and its tools call as, besides `admin`: a name, or None for
    # $CLEARING_OPERATOR (services/stack/config.py operator_identity); its certificate is made with the others.
    operator: str | None = None
    # The per-identity call limits every service applies (`StackConfig.limits`; services/security/limits.py): empty
    # for the defaults.
    limits: dict[str, Any] = field(default_factory=dict)
    # role → processes serving it on its one port (`StackConfig.workers`, SO_REUSEPORT): empty for one each.
    workers: dict[str, int] = field(default_factory=dict)
    # The regions' smart-audit rule libraries (`StackConfig.audit_rules_dir`): empty for the shipped ones.
    audit_rules_dir: str = ""
    owns_database: bool = field(default=False, init=False)

    @property
    def config_path(self) -> Path:
        return self.work_dir / "stack.json"

    @property
    def certs_dir(self) -> Path:
        return self.work_dir / CERTS_SUBDIR

    def make_certificates(self) -> Path:
        """The stack's certificate directory: a certificate per party of regions.toml and for the operators
        (admin, and `operator`); idempotent, valid certificates are kept."""
        regions, hospitals = certs.configured_parties()
        operators = sorted({DEFAULT_OPERATOR, operator_identity(self.operator).subject})
        certs.init(self.certs_dir, regions, hospitals, operators)
        return self.certs_dir

    async def start(self) -> StackConfig:
        await self.prepare()
        return await self.launch()

    async def prepare(self) -> StackConfig:
        """The database, one database per party and the configuration file; no service yet. Between
        `prepare()` and `launch()` a caller may route links through proxies (`dial_through`)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "logs").mkdir(exist_ok=True)
        if self.database is None:
            self.database = Database(self.work_dir / "pgdata")
            self.owns_database = True
        regions = sorted(load_regions())
        prefix = f"ch{uuid.uuid4().hex[:6]}" if self.fresh else "ch"
        certs_dir = "" if self.insecure else str(self.make_certificates().resolve())
        self.config = StackConfig(
            base_dsn=self.database.base_dsn, database_prefix=prefix, clearing_house_port=free_port(),
            his_port=free_port(), region_ports={region: free_port() for region in regions}, seed=self.seed,
            members_per_region=self.members_per_region, certs_dir=certs_dir, insecure=self.insecure,
            limits=self.limits, workers=self.workers, audit_rules_dir=self.audit_rules_dir,
            # Development keys, random per stack directory and kept there (a restart still matches its hashes).
            member_key_dir=str(ensure_member_keys(self.work_dir / "keys", regions)))
        await asyncio.gather(*(ensure_database(self.database.base_dsn, self.config.database(party))
                               for party in self.config.parties()))  # independent: at once
        self.config.save(self.config_path)
        roles = {"clearinghouse": self.config.clearing_house_port, "his": self.config.his_port,
                 **{f"region:{region}": port for region, port in self.config.region_ports.items()}}
        (self.work_dir / "run").mkdir(exist_ok=True)
        for role, port in roles.items():
            for worker in range(self.config.worker_count(role)):
                name = process_name(role, worker)
                file_name = name.replace(":", "_").replace("#", "_")
                self.services[name] = ServiceProcess(role, port, self.work_dir / "logs" / f"{file_name}.log",
                                                     worker=worker,
                                                     ready_path=self.work_dir / "run" / f"{file_name}.ready")
        self.config.metrics_ports = {name: free_port() for name in self.services}
        self.config.save(self.config_path)
        write_scrape_targets(self.work_dir / SCRAPE_TARGETS, self.config.metrics_ports)
        return self.config

    def dial_through(self, dial: dict[str, str]) -> None:
        """Make every party reach `role` at `dial[role]` (StackConfig.dial); call before `launch()`."""
        assert self.config is not None
        self.config.dial = dict(dial)
        self.config.save(self.config_path)

    async def launch(self) -> StackConfig:
        """Spawn every service and wait until each answers its health check."""
        assert self.config is not None
        for role in self.services:
            self.spawn(role)
        await asyncio.gather(*(self.wait_healthy(role) for role in self.services))
        return self.config

    def spawn(self, name: str) -> None:
        """Start the process `name` (a role, or `ROLE#K` for a role's further processes)."""
        service = self.services[name]
        environment = None if self.clock_file is None else {**os.environ, clock.CLOCK_FILE_ENV: str(self.clock_file)}
        arguments = [sys.executable, "-m", "services.stack.serve", service.role, "--config", str(self.config_path),
                     "--worker", str(service.worker)]
        if service.ready_path is not None:
            service.ready_path.unlink(missing_ok=True)
            arguments += ["--ready-file", str(service.ready_path)]
        with service.log_path.open("ab") as log_file:
            service.process = subprocess.Popen(
                arguments,
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                env=environment)

    async def move_clock_to(self, instant: datetime) -> None:
        """Set every service's clock to `instant` (it runs on from there) and wait until they have all read it."""
        assert self.clock_file is not None, "the stack was started without a clock file"
        clock.write_offset_file(self.clock_file, clock.offset_to(instant))
        await asyncio.sleep(3 * clock.FILE_CHECK_S)

    async def wait_healthy(self, name: str) -> None:
        """Until the process `name` serves: its port answers the health check, dialled as the operator (a failed
        handshake reads as not up), and — since another process of its role may have answered — it has written
        its ready file."""
        assert self.config is not None
        service = self.services[name]
        assert service.process is not None
        deadline = time.monotonic() + HEALTH_WAIT_S
        async with self.config.transport().channel(service.address, operator_identity(self.operator)) as channel:
            await wait_until_serving(channel, service.process, name, str(service.log_path), HEALTH_WAIT_S)
        while service.ready_path is not None and not service.ready_path.exists():
            if service.process.poll() is not None:
                raise RuntimeError(f"{name} exited with {service.process.returncode}; see {service.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become ready; see {service.log_path}")
            await asyncio.sleep(0.05)

    def kill(self, role: str, signum: int = signal.SIGKILL) -> None:
        process = self.services[role].process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signum)
            process.wait(STOP_WAIT_S)

    def running(self, role: str) -> bool:
        process = self.services[role].process
        return process is not None and process.poll() is None

    async def restart(self, role: str) -> None:
        self.kill(role)
        self.spawn(role)
        await self.wait_healthy(role)

    def stop(self) -> None:
        """SIGTERM every service, SIGKILL what is still running after the grace period, stop the database."""
        for service in self.services.values():
            if service.process is not None and service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        for service in self.services.values():
            if service.process is None:
                continue
            try:
                service.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()
        if self.database is not None and self.owns_database:
            self.database.stop()
            self.database = None
