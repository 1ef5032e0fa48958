"""The stack's configuration file (JSON): where each party listens, which database it owns, the certificate
directory every party serves and dials mutual TLS from (plaintext only when `insecure`), and the per-identity call
limits every party's server applies (`limits`, services/security/limits.py)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from services.security.identity import Identity, operator
from services.common.batch_settings import BatchSettings
from services.security.limits import CallLimits
from services.security.party import Transport

DEFAULT_SEED = 2026
MEMBERS_PER_REGION = 200
CERTS_SUBDIR = "certs"  # the stack's certificate directory, under its work directory
OPERATOR_ENV = "CLEARING_OPERATOR"  # the operator `clearing-admin` and the launcher call as (default `admin`)
DEFAULT_OPERATOR = "admin"
# Each insured region's first prepayment (预付金) deposited by `make demo` and `clearing-admin stack up`: sized so that
# the demo's month uses most of it (some regions cross the 70 % warning, a few run out).
PREPAYMENT_FEN = 2_000_000_00
WORKERS_MAX = 16  # processes of one role on one port


def process_name(role: str, worker: int) -> str:
    """A process's name in `metrics_ports` and the launcher: the role for the first, `ROLE#K` for the others."""
    return role if worker == 0 else f"{role}#{worker}"


def dsn_for(base_dsn: str, database: str) -> str:
    """The same server as `base_dsn`, database `database` (works for socket and TCP URLs)."""
    parts = urlsplit(base_dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@dataclass
class StackConfig:
    base_dsn: str
    database_prefix: str = "ch"
    clearing_house_port: int = 0
    his_port: int = 0
    region_ports: dict[str, int] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)  # role → Prometheus port
    seed: int = DEFAULT_SEED
    members_per_region: int = MEMBERS_PER_REGION
    # role → the address its neighbours dial instead of its own port (e.g. a fault-injecting proxy,
    # services/faults); empty means every party dials the others directly.
    dial: dict[str, str] = field(default_factory=dict)
    # The certificate directory (services/security/certs.py) every party serves and dials mutual TLS from.
    certs_dir: str = ""
    # Plaintext gRPC instead (`--insecure`): every service logs a warning at every start.
    insecure: bool = False
    # Where each region's insured agency reads its secret member key (`<dir>/<region>.key`,
    # services/insured/keys.py); empty: the directory CLEARING_MEMBER_KEY_DIR names. A development stack
    # generates its keys into its own work directory (`StackProcesses.prepare`).
    member_key_dir: str = ""
    # Per-identity call limits (rate, burst, calls in flight), per role and per identity path, e.g.
    # {"roles": {"hospital": {"rate_per_s": 50}}, "identities": {"hospital/H44010000001": {"concurrent": 4}}};
    # empty: the defaults (services/security/limits.py DEFAULT_LIMITS, docs/security.md "Abuse limits").
    limits: dict[str, Any] = field(default_factory=dict)
    # How the parties batch settlements between them, e.g. {"size_max": 64, "wait_ms": 5} or {"enabled": false};
    # empty: the defaults (services/common/batch_settings.py).
    batching: dict[str, Any] = field(default_factory=dict)
    # role → how many processes serve it on its one port (SO_REUSEPORT, SPEC §11), e.g. {"clearinghouse": 2};
    # a role not named has one. The HIS simulator has one always (it seeds its patients at start).
    workers: dict[str, int] = field(default_factory=dict)
    # Where the regions' smart-audit rule libraries are (`<region>.toml`); empty: the shipped ones
    # (services/regions/audit_rules/).
    audit_rules_dir: str = ""

    def call_limits(self) -> CallLimits:
        """The configured limits (ValueError naming the entry when `limits` is malformed)."""
        return CallLimits.from_config(self.limits)

    def transport(self) -> Transport:
        """Mutual TLS from `certs_dir`, or plaintext when `insecure`; either way with the configured call limits."""
        batching = BatchSettings.from_config(self.batching)
        if self.insecure:
            return Transport.plaintext(self.call_limits(), batching)
        if not self.certs_dir:
            raise ValueError("the stack's configuration names no certificate directory (certs_dir) and is not "
                             "insecure: start it again with `clearing-admin stack up`")
        return Transport.tls(Path(self.certs_dir), self.call_limits(), batching)

    def database(self, party: str) -> str:
        return f"{self.database_prefix}_{party}"

    def dsn(self, party: str) -> str:
        return dsn_for(self.base_dsn, self.database(party))

    def parties(self) -> list[str]:
        regions = sorted(self.region_ports)
        return ["clearinghouse", "his", *(f"treating_{r}" for r in regions), *(f"insured_{r}" for r in regions)]

    def address(self, port: int) -> str:
        return f"127.0.0.1:{port}"

    def role_port(self, role: str) -> int:
        """The port a role (`clearinghouse`, `his`, `region:<code>`) listens on."""
        if role == "clearinghouse":
            return self.clearing_house_port
        if role == "his":
            return self.his_port
        return self.region_ports[role.removeprefix("region:")]

    def worker_count(self, role: str) -> int:
        """How many processes serve `role` (ValueError naming the entry when `workers` is malformed)."""
        count = self.workers.get(role, 1)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= WORKERS_MAX:
            raise ValueError(f"workers.{role}: must be a whole number from 1 to {WORKERS_MAX}, not {count!r}")
        if role == "his" and count != 1:
            raise ValueError("workers.his: the HIS simulator runs as one process")
        return count

    def dial_address(self, role: str) -> str:
        """Where a party reaches `role`: the `dial` override when set, else the role's own port."""
        return self.dial.get(role) or self.address(self.role_port(role))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> StackConfig:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def operator_identity(name: str | None = None) -> Identity:
    """The operator a tool calls as: `name`, else $CLEARING_OPERATOR, else `admin` (IdentityError when invalid)."""
    return operator(name or os.environ.get(OPERATOR_ENV) or DEFAULT_OPERATOR)
