"""How one party speaks gRPC: mutual TLS with its own certificate, or plaintext only when told `insecure`.

* `Transport`: the stack-wide choice — a certificate directory, or `insecure` (plaintext, a warning logged at
  every start of every service). It comes from the stack's configuration (`StackConfig.transport()`), and the
  wiring (services/stack/wiring.py) turns it into one `Security` per party with the party's identity.
* `Security`: one party's side of it — its certificate directory, its own identity, the deny list its server
  checks callers against, the per-identity call limiter of its server (services/security/limits.py, from the
  stack-wide `CallLimits` the transport carries), and the insecure flag. The server serves with `server_credentials()`; the servicers
  hold it, and the `rpc`/`rpc_stream` decorators (services/common/errors.py) authenticate every call with it
  (`services.security.caller.authenticate`); the party dials its neighbours with `channel(address)`, as its own
  identity, or (the HIS simulator, as each hospital) as another identity of the same directory. Those channels
  count the party's calls (`grpc_client_*`); a `Transport`'s own (the CLI's, a test's) do not: they export nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import grpc

from services.common.batch_settings import BatchSettings
from services.common.metrics import Party
from services.common.rpc_metrics import client_interceptors
from services.security import tls
from services.security.identity import AGENCY, CLEARINGHOUSE, SIMULATOR, Identity
from services.security.limits import CallLimits, Limiter

# The largest message any party sends or receives, requests and responses alike (every server's
# `grpc.max_receive_message_length` / `max_send_message_length`, services/common/server.py, and every channel's).
# The biggest legitimate messages are whole catalogues (ImportCatalogue, PublishCatalogue): the demo's are
# 0.76–0.78 MiB (7,400 rows, ~82 bytes a row), so 16 MiB takes about 20 times that, some 200,000 rows; every
# other request is far smaller (an upload of LINES_PER_UPLOAD_MAX lines is well under 1 MiB), and the daily
# detail streams send one settlement per message. Anything bigger is RESOURCE_EXHAUSTED from gRPC itself, before
# any handler runs.
MESSAGE_BYTES_MAX = 16 * 1024 * 1024
CHANNEL_OPTIONS = (("grpc.max_receive_message_length", MESSAGE_BYTES_MAX),
                   ("grpc.max_send_message_length", MESSAGE_BYTES_MAX))
INSECURE_WARNING = ("plaintext gRPC (--insecure): no mutual TLS, callers are not authenticated and anyone who can "
                    "reach the port can call it; for development only")


def channel_to(address: str, credentials: grpc.ChannelCredentials | None,
               options: tuple[tuple[str, object], ...] = CHANNEL_OPTIONS,
               interceptors: list[grpc.aio.ClientInterceptor] | None = None) -> grpc.aio.Channel:
    """A channel to `address`: mutual TLS with `credentials`, plaintext when they are None (insecure only)."""
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(address, credentials, options=options, interceptors=interceptors)


# Who dials, for the metrics of the calls a party makes (`grpc_client_*`): a region's process dials only as its
# treating agency (its insured agency answers, it never calls out), the HIS simulator's as `his`.
DIALLING_PARTIES = {CLEARINGHOUSE: "clearinghouse", AGENCY: "treating", SIMULATOR: "his"}


def dialling_party(identity: Identity) -> Party:
    """The `party` and `region` labels of the calls `identity`'s process makes."""
    return Party(DIALLING_PARTIES.get(identity.role, identity.role),
                 identity.subject if identity.role == AGENCY else "")


@dataclass(frozen=True)
class Transport:
    """Mutual TLS from `certs_dir`, or plaintext when `insecure` (then `certs_dir` is not used); every server of
    the stack limits its callers by `limits` (per identity: none apply in insecure mode, there is no identity)."""

    certs_dir: Path | None
    insecure: bool = False
    limits: CallLimits = CallLimits()
    # How the parties batch the settlements they send each other (services/common/batching.py).
    batching: BatchSettings = BatchSettings()

    def __post_init__(self) -> None:
        if not self.insecure and self.certs_dir is None:
            raise ValueError("mutual TLS needs a certificate directory; plaintext needs insecure=True")

    @classmethod
    def tls(cls, certs_dir: Path | str, limits: CallLimits | None = None,
            batching: BatchSettings | None = None) -> Transport:
        return cls(Path(certs_dir), limits=limits or CallLimits(), batching=batching or BatchSettings())

    @classmethod
    def plaintext(cls, limits: CallLimits | None = None, batching: BatchSettings | None = None) -> Transport:
        return cls(None, insecure=True, limits=limits or CallLimits(), batching=batching or BatchSettings())

    def security(self, identity: Identity) -> Security:
        """The side of party `identity`: its certificate, a deny list and a call limiter of its own (one per
        process)."""
        limiter = Limiter(self.limits)
        if self.insecure:
            return Security(identity, None, insecure=True, limiter=limiter)
        assert self.certs_dir is not None
        return Security(identity, self.certs_dir, tls.DenyList.of(self.certs_dir), limiter=limiter)

    def credentials(self, identity: Identity) -> grpc.ChannelCredentials | None:
        """Client credentials presenting `identity`'s certificate; None (plaintext) when insecure."""
        if self.insecure:
            return None
        assert self.certs_dir is not None
        return tls.channel_credentials(self.certs_dir, identity)

    def channel(self, address: str, identity: Identity,
                options: tuple[tuple[str, object], ...] = CHANNEL_OPTIONS) -> grpc.aio.Channel:
        return channel_to(address, self.credentials(identity), options)


@dataclass(frozen=True)
class Security:
    """One party: its own identity, its certificate directory, the deny list its server checks every caller's
    certificate against and the limiter it admits every caller's calls with — or `insecure`: plaintext, no check,
    no per-identity limit (and a warning at every start)."""

    identity: Identity
    certs_dir: Path | None
    deny_list: tls.DenyList | None = None
    insecure: bool = False
    limiter: Limiter = field(default_factory=Limiter, repr=False, compare=False)
    transport: Transport = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "transport", Transport(self.certs_dir, self.insecure, self.limiter.limits))

    def server_credentials(self) -> grpc.ServerCredentials | None:
        """Mutual-TLS server credentials for this party's certificate (re-read on rotation); None when insecure."""
        if self.insecure:
            return None
        assert self.certs_dir is not None
        return tls.server_credentials(self.certs_dir, self.identity)

    def credentials(self, identity: Identity | None = None) -> grpc.ChannelCredentials | None:
        """Client credentials as this party, or as `identity` (another leaf of the same directory)."""
        return self.transport.credentials(identity or self.identity)

    def channel(self, address: str, identity: Identity | None = None,
                options: tuple[tuple[str, object], ...] = CHANNEL_OPTIONS) -> grpc.aio.Channel:
        """A channel to a neighbour, dialled as this party (or as `identity`: the HIS simulator as a hospital); every
        call on it is counted as this party's (`grpc_client_*`, services/common/metrics.py)."""
        return channel_to(address, self.credentials(identity), options,
                          client_interceptors(dialling_party(self.identity)))
