"""gRPC credentials from a certificate directory, and the per-call check of the caller (docs/security.md).

* `server_credentials(dir, identity)`: mutual TLS for `server.add_secure_port(address, credentials)`. A client
  without a certificate, with one from another CA, or with an expired one fails the TLS handshake: it sees
  UNAVAILABLE and no handler runs. The server re-reads its certificate, key and CA whenever they change on disk
  (gRPC asks on every new connection), so a re-issued certificate is served from the next connection on.
* `channel_credentials(dir, identity)`: for `grpc.aio.secure_channel(address, credentials, options=...)`. They are
  read once: a channel keeps the client certificate it was made with; a rotated client certificate is used by
  channels made after it.
* `DenyList` + `check_peer(context, deny_list)`: the caller's identity, refused (Unauthenticated →
  UNAUTHENTICATED) when its certificate's serial is on the deny list. gRPC Python has no hook into certificate
  verification (no CRL or OCSP check in the handshake, and the fetcher above sees no client certificate), so a
  revoked but otherwise valid certificate completes the handshake: revocation is enforced after it, per call,
  by `check_peer` — every servicer method must call it before doing anything.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from clearing.errors import InvalidField, Unauthenticated
from services.security.certs import CertDir, leaf_problem, parse_deny_list, read_deny_list
from services.security.identity import Identity, peer_identity

log = structlog.get_logger()
DENY_LIST_CHECK_S = 0.05

FileSignature = tuple[int, int, int] | None


def file_signature(path: Path) -> FileSignature:
    """(inode, mtime ns, size): a file replaced by rename gets a new inode, so even two changes within one tick of
    the file system's clock are told apart (the pattern of services/common/clock.py)."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size


def read_pair(paths: CertDir, identity: Identity) -> tuple[bytes, bytes, bytes]:
    """(CA PEM, key PEM, certificate PEM) of `identity`; InvalidField when missing, unreadable or mismatched."""
    try:
        ca, key, certificate = (paths.ca_cert.read_bytes(), paths.key(identity).read_bytes(),
                                paths.cert(identity).read_bytes())
    except OSError as error:
        raise InvalidField("certs", f"cannot read the certificate of {identity.path}: {error}") from None
    try:
        x509.load_pem_x509_certificate(ca)
        private = serialization.load_pem_private_key(key, password=None)
        public = x509.load_pem_x509_certificate(certificate).public_key()
    except (ValueError, TypeError) as error:
        raise InvalidField("certs", f"the certificate of {identity.path} does not parse: {error}") from None
    if private.public_key().public_numbers() != public.public_numbers():  # type: ignore[union-attr]
        raise InvalidField("certs", f"{paths.key(identity)} does not match {paths.cert(identity)}")
    return ca, key, certificate


class ServerCertificates:
    """The certificate configuration a server presents, re-read when its files change (the fetcher of
    `grpc.dynamic_ssl_server_credentials`, called by gRPC before each new connection's handshake)."""

    def __init__(self, directory: Path, identity: Identity) -> None:
        self.paths = CertDir(Path(directory))
        self.identity = identity
        self.lock = threading.Lock()
        self.signature = self.current_signature()
        self.initial = self.configuration(*read_pair(self.paths, identity))

    def current_signature(self) -> tuple[FileSignature, ...]:
        return (file_signature(self.paths.ca_cert), file_signature(self.paths.key(self.identity)),
                file_signature(self.paths.cert(self.identity)))

    @staticmethod
    def configuration(ca: bytes, key: bytes, certificate: bytes) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([(key, certificate)], root_certificates=ca)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """A new configuration when the files changed since the last one, else None (keep the current one). A
        half-replaced pair (a new key with the old certificate) is skipped: the next connection looks again."""
        try:
            with self.lock:
                signature = self.current_signature()
                if signature == self.signature:
                    return None
                pair = read_pair(self.paths, self.identity)
                self.signature = signature
            log.info("server_certificate_reloaded", identity=self.identity.spiffe_id)
            return self.configuration(*pair)
        except InvalidField as error:
            log.warning("server_certificate_not_reloaded", identity=self.identity.spiffe_id, error=error.message)
            return None
        except Exception:  # noqa: BLE001 - an exception in the fetcher must not take the server down
            log.exception("server_certificate_fetch_failed", identity=self.identity.spiffe_id)
            return None


def server_credentials(directory: Path, identity: Identity) -> grpc.ServerCredentials:
    """Mutual-TLS server credentials for `identity`, following its files on disk without a restart."""
    certificates = ServerCertificates(directory, identity)
    return grpc.dynamic_ssl_server_credentials(certificates.initial, certificates.fetch,
                                               require_client_authentication=True)


def channel_credentials(directory: Path, identity: Identity) -> grpc.ChannelCredentials:
    """Client credentials presenting `identity`'s certificate and trusting only the directory's CA."""
    ca, key, certificate = read_pair(CertDir(Path(directory)), identity)
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=certificate)


class DenyList:
    """The revoked serial numbers of DIR/revoked.txt, re-read when the file changes (looked at no more often than
    every `check_interval_s`). An unreadable file keeps the last list read: a revocation is never dropped by a bad
    edit (the error is logged); a missing file denies nothing."""

    def __init__(self, path: Path, check_interval_s: float = DENY_LIST_CHECK_S) -> None:
        self.path = Path(path)
        self.check_interval_s = check_interval_s
        self.checked_at = float("-inf")
        self.signature: FileSignature | tuple[()] = ()
        self.serials: frozenset[int] = frozenset()
        self.lock = threading.Lock()
        self.refresh()

    @classmethod
    def of(cls, directory: Path) -> DenyList:
        return cls(CertDir(Path(directory)).revoked)

    def refresh(self) -> None:
        with self.lock:
            if time.monotonic() - self.checked_at < self.check_interval_s:
                return
            self.checked_at = time.monotonic()
            signature = file_signature(self.path)
            if signature == self.signature:
                return
            try:
                text = self.path.read_text(encoding="utf-8") if signature is not None else ""
                serials = parse_deny_list(text)
            except (OSError, UnicodeDecodeError, ValueError) as error:
                log.error("deny_list_unreadable", path=str(self.path), error=str(error))
                self.signature = signature
                return
            self.signature = signature
            if serials != self.serials:
                log.info("deny_list_loaded", path=str(self.path), revoked=len(serials))
            self.serials = serials

    def is_revoked(self, serial: int) -> bool:
        self.refresh()
        return serial in self.serials


def check_peer(context: grpc.aio.ServicerContext, deny_list: DenyList | None) -> Identity:
    """The caller's identity from its certificate; Unauthenticated (→ UNAUTHENTICATED through the `rpc`
    decorators) without mutual TLS, for a certificate naming no valid identity, or one on the deny list."""
    peer = peer_identity(context)
    if deny_list is not None and deny_list.is_revoked(peer.serial):
        raise Unauthenticated(f"the certificate {peer.serial:x} of {peer.identity.spiffe_id} is revoked")
    return peer.identity


def certificate_problem(directory: Path, identity: Identity) -> str:
    """What is wrong with `identity`'s own certificate in `directory` as a client would present it (missing, not
    issued by the directory's CA, expired, revoked, …), or "" when nothing is."""
    paths = CertDir(Path(directory))
    try:
        ca_cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        certificate = x509.load_pem_x509_certificate(paths.cert(identity).read_bytes())
    except (OSError, ValueError) as error:
        return f"cannot read the certificate of {identity.path} or the CA: {error}"
    try:
        key = serialization.load_pem_private_key(paths.key(identity).read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return f"{paths.key(identity)} is missing or unreadable"
    problem = leaf_problem(certificate, key, ca_cert, identity)  # type: ignore[arg-type]
    if problem:
        return f"the certificate of {identity.path} is {problem}" if problem in ("expired", "not valid yet") \
            else f"the certificate of {identity.path}: {problem}"
    try:
        revoked = certificate.serial_number in read_deny_list(paths.revoked)
    except ValueError:
        revoked = False
    return f"the certificate of {identity.path} is revoked" if revoked else ""


def describe_handshake_failure(address: str, directory: Path, identity: Identity, detail: str = "") -> str:
    """What a client says, plainly, when a call to a TLS server fails UNAVAILABLE with no status of the server's
    own: nothing listens there (the connection was refused), or the TLS handshake failed — and then what to check,
    with what it finds wrong with its own certificate if anything (the server's reason is only in its own log)."""
    if "refused" in detail.lower():
        return (f"UNAVAILABLE: nothing answers at {address} (connection refused): is the stack up "
                "(`clearing-admin stack up`)?")
    problem = certificate_problem(directory, identity)
    return (f"UNAVAILABLE: the TLS handshake with {address} failed — check the certificate directory {directory}: "
            f"the certificate of {identity.path} must be issued by the stack's CA and be neither expired nor revoked "
            f"(`clearing-admin certs show {directory}`)" + (f"; {problem}" if problem else ""))
