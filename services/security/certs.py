"""The development CA, one certificate per party instance, and the deny list, in a directory (docs/security.md).

Layout of a certificate directory DIR (every `*.key` / `key.pem` is secret, mode 0600):

    DIR/ca/ca.pem, DIR/ca/ca.key          the CA (EC P-256, CA:TRUE pathlen 0, keyCertSign + cRLSign)
    DIR/<identity path>/cert.pem, key.pem  one leaf per identity: DIR/clearinghouse/, DIR/agency/440100/,
                                           DIR/hospital/H44010000001/, DIR/operator/admin/, DIR/simulator/his/
    DIR/revoked.txt                        the deny list: serial numbers in hex, one per line, `#` comments

A leaf is EC P-256, CA:FALSE, digitalSignature, serverAuth + clientAuth, with one URI SAN (its SPIFFE id)
and, for a party that serves (clearing house, agencies, the HIS simulator), the DNS/IP SANs it is dialled at
(`localhost`, 127.0.0.1, ::1 by default). Files are replaced atomically (write, rename), so a running server
(services/security/tls.py) never reads half a file; it re-reads them on the next connection.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from clearing.errors import InvalidField
from services.security.identity import (
    AGENCY, CLEARINGHOUSE, SIMULATOR, TRUST_DOMAIN, Identity, IdentityError, agency, clearinghouse, his_simulator,
    hospital, operator,
)

DEFAULT_DAYS = 397
CA_DAYS = 3650  # the development CA outlives the leaves it signs; `init --force` makes a new one
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
SERVER_ROLES = frozenset({CLEARINGHOUSE, AGENCY, SIMULATOR})
CA_NAME = f"{TRUST_DOMAIN} development CA"
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
REVOKED_FILE = "revoked.txt"
REVOKED_HEADER = ("# Revoked certificates: one serial number (hex) per line; `#` starts a comment.\n"
                  "# Servers re-read this file while they run (services/security/tls.py DenyList).\n")


@dataclass(frozen=True)
class CertDir:
    """The paths of a certificate directory."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca" / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca" / "ca.key"

    @property
    def revoked(self) -> Path:
        return self.root / REVOKED_FILE

    def leaf_dir(self, identity: Identity) -> Path:
        return self.root / identity.path

    def cert(self, identity: Identity) -> Path:
        return self.leaf_dir(identity) / CERT_FILE

    def key(self, identity: Identity) -> Path:
        return self.leaf_dir(identity) / KEY_FILE

    def identities(self) -> list[Identity]:
        """Every identity with a certificate here, sorted."""
        found = []
        for path in self.root.glob(f"**/{CERT_FILE}"):
            try:
                found.append(Identity.from_path(path.parent.relative_to(self.root).as_posix()))
            except IdentityError:
                continue
        return sorted(found)


@dataclass(frozen=True)
class CertInfo:
    """What `show` lists for one leaf."""

    identity: Identity
    serial: int
    not_before: dt.datetime
    not_after: dt.datetime
    revoked: bool
    problem: str = ""  # why the leaf is not valid (expired, from another CA, …); "" when it is


@dataclass
class InitReport:
    ca_issued: bool = False
    issued: list[Identity] = field(default_factory=list)
    kept: list[Identity] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Serial numbers and the deny list
# ---------------------------------------------------------------------------------------------

def format_serial(serial: int) -> str:
    """A serial number as the deny list writes it: lower-case hex, no prefix."""
    return f"{serial:x}"


def parse_serial(text: str) -> int:
    """A serial number in hex, with or without `0x` and `:` separators (as `openssl x509 -serial` prints it)."""
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "")
    if not re.fullmatch(r"[0-9a-f]{1,40}", cleaned):
        raise ValueError(f"{text!r} is not a serial number in hex")
    return int(cleaned, 16)


def parse_deny_list(text: str) -> frozenset[int]:
    """The serials of a deny list; ValueError naming the line of anything else."""
    serials = set()
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if content:
            try:
                serials.add(parse_serial(content))
            except ValueError as error:
                raise ValueError(f"line {number}: {error}") from None
    return frozenset(serials)


def read_deny_list(path: Path) -> frozenset[int]:
    """The serials in a deny list file; a missing file denies nothing."""
    try:
        return parse_deny_list(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return frozenset()


# ---------------------------------------------------------------------------------------------
# Making certificates (pure: keys and certificates in, out)
# ---------------------------------------------------------------------------------------------

def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_ca(days: int = DEFAULT_DAYS, not_before: dt.datetime | None = None,
            ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed development CA that may sign leaves only (path length 0)."""
    key = new_key()
    start = not_before or _now() - dt.timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, TRUST_DOMAIN)])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256()))
    return key, certificate


def make_leaf(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, identity: Identity,
              days: int = DEFAULT_DAYS, hosts: Sequence[str] | None = None, not_before: dt.datetime | None = None,
              ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A leaf for `identity` signed by the CA. `hosts` (DNS names or IP addresses) default to DEFAULT_HOSTS for a
    party that serves and to none for a client-only one (hospitals, operators). `not_before` (default: five
    minutes ago, for clock skew) lets a test make a certificate that has already expired."""
    if days < 1:
        raise InvalidField("--days", "must be at least 1")
    if hosts is None:
        hosts = DEFAULT_HOSTS if identity.role in SERVER_ROLES else ()
    key = new_key()
    start = not_before or _now() - dt.timedelta(minutes=5)
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity.spiffe_id)]
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity.path),
                                 x509.NameAttribute(NameOID.ORGANIZATION_NAME, TRUST_DOMAIN)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256()))
    return key, certificate


def spiffe_ids(certificate: x509.Certificate) -> list[str]:
    """The URI SANs of a certificate."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def leaf_problem(certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey | None, ca_cert: x509.Certificate,
                 identity: Identity, now: dt.datetime | None = None) -> str:
    """Why a leaf is not a usable certificate of `identity` under `ca_cert`, or "" when it is."""
    now = now or _now()
    try:
        certificate.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return "not issued by this CA"
    if key is not None and key.public_key().public_numbers() != certificate.public_key().public_numbers():
        return "key.pem does not match cert.pem"
    if spiffe_ids(certificate) != [identity.spiffe_id]:
        return f"names {spiffe_ids(certificate)}, not {identity.spiffe_id}"
    if now >= certificate.not_valid_after_utc:
        return "expired"
    if now < certificate.not_valid_before_utc:
        return "not valid yet"
    return ""


# ---------------------------------------------------------------------------------------------
# The directory: init, issue, revoke, show
# ---------------------------------------------------------------------------------------------

def default_identities(regions: Iterable[str], hospitals: Iterable[str], operators: Iterable[str]) -> list[Identity]:
    """The clearing house, the HIS simulator, one agency per region, one leaf per hospital and operator."""
    return [clearinghouse(), his_simulator(), *(agency(r) for r in regions), *(hospital(h) for h in hospitals),
            *(operator(o) for o in operators)]


def configured_parties() -> tuple[list[str], list[str]]:
    """Every region and hospital of services/regions/regions.toml."""
    from services.common.regions import load_regions

    regions = load_regions()
    return sorted(regions), sorted(h.code for region in regions.values() for h in region.hospitals)


def init(directory: Path, regions: Iterable[str], hospitals: Iterable[str], operators: Iterable[str],
         days: int = DEFAULT_DAYS, force: bool = False, hosts: Sequence[str] | None = None) -> InitReport:
    """Make the CA and a leaf per identity. Idempotent: a valid CA and valid leaves (issued by it, matching
    key, right identity, not expired, not revoked) are kept; anything else is issued anew. `force` makes a new
    CA and re-issues every leaf (the old ones stop being trusted once servers re-read the CA)."""
    paths = CertDir(Path(directory))
    report = InitReport()
    ca = None if force else _load_ca(paths)
    if ca is None:
        ca = make_ca(max(days, CA_DAYS))
        _write_key(paths.ca_key, ca[0])
        _write_file(paths.ca_cert, _pem(ca[1]))
        report.ca_issued = True
    if not paths.revoked.exists():
        _write_file(paths.revoked, REVOKED_HEADER.encode())
    denied = read_deny_list(paths.revoked)
    for identity in default_identities(regions, hospitals, operators):
        current = None if force or report.ca_issued else _load_leaf(paths, identity)
        if (current is not None and current[0] is not None and not leaf_problem(current[1], current[0], ca[1], identity)
                and current[1].serial_number not in denied):
            report.kept.append(identity)
            continue
        _issue_with(paths, ca, identity, days, hosts, None)
        report.issued.append(identity)
    return report


def issue(directory: Path, identity: Identity, days: int = DEFAULT_DAYS, hosts: Sequence[str] | None = None,
          not_before: dt.datetime | None = None) -> CertInfo:
    """Issue (or re-issue: rotate) one leaf with the directory's CA; a running server serves a re-issued
    certificate of its own from its next connection on."""
    paths = CertDir(Path(directory))
    ca = _load_ca(paths)
    if ca is None:
        raise InvalidField("DIR", f"{directory} has no valid CA: run `clearing-admin certs init {directory}` first")
    certificate = _issue_with(paths, ca, identity, days, hosts, not_before)
    return _info(identity, certificate, ca[1], read_deny_list(paths.revoked), None)


def revoke(directory: Path, identity: Identity) -> int:
    """Append the serial of `identity`'s current certificate to the deny list; returns it."""
    paths = CertDir(Path(directory))
    loaded = _load_leaf(paths, identity)
    if loaded is None:
        raise InvalidField("ROLE_PATH", f"{identity.path} has no certificate in {directory}")
    serial = loaded[1].serial_number
    try:
        text = paths.revoked.read_text(encoding="utf-8")
        denied = parse_deny_list(text)
    except FileNotFoundError:
        text, denied = REVOKED_HEADER, frozenset()
    except ValueError as error:
        raise InvalidField(REVOKED_FILE, str(error)) from None
    if serial not in denied:
        if text and not text.endswith("\n"):
            text += "\n"
        text += f"{format_serial(serial)}  # {identity.spiffe_id} revoked {_now():%Y-%m-%dT%H:%M:%SZ}\n"
        _write_file(paths.revoked, text.encode())
    return serial


def show(directory: Path) -> list[CertInfo]:
    """Every leaf of the directory with its serial, validity and whether it is revoked."""
    paths = CertDir(Path(directory))
    ca = _load_ca(paths)
    if ca is None:
        raise InvalidField("DIR", f"{directory} has no valid CA: run `clearing-admin certs init {directory}` first")
    try:
        denied = read_deny_list(paths.revoked)
    except ValueError as error:
        raise InvalidField(REVOKED_FILE, str(error)) from None
    result = []
    for identity in paths.identities():
        loaded = _load_leaf(paths, identity)
        if loaded is None:
            continue
        info = _info(identity, loaded[1], ca[1], denied, loaded[0])
        if loaded[0] is None:
            info = dataclasses.replace(info, problem=info.problem or "key.pem missing or unreadable")
        result.append(info)
    return result


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

def load_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _issue_with(paths: CertDir, ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], identity: Identity,
                days: int, hosts: Sequence[str] | None, not_before: dt.datetime | None) -> x509.Certificate:
    key, certificate = make_leaf(ca[0], ca[1], identity, days, hosts, not_before)
    # Key first, then certificate: a server re-reading in between sees a pair that does not match and keeps
    # serving the old pair (tls.py checks), never a certificate without its key.
    _write_key(paths.key(identity), key)
    _write_file(paths.cert(identity), _pem(certificate))
    return certificate


def _info(identity: Identity, certificate: x509.Certificate, ca_cert: x509.Certificate, denied: frozenset[int],
          key: ec.EllipticCurvePrivateKey | None) -> CertInfo:
    return CertInfo(identity, certificate.serial_number, certificate.not_valid_before_utc,
                    certificate.not_valid_after_utc, certificate.serial_number in denied,
                    leaf_problem(certificate, key, ca_cert, identity))


def _load_ca(paths: CertDir) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
    """The CA's key and certificate when both load, match and the certificate is a current CA; else None."""
    try:
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
        certificate = load_certificate(paths.ca_cert)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    try:
        is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if (not is_ca or key.public_key().public_numbers() != certificate.public_key().public_numbers()
            or _now() >= certificate.not_valid_after_utc):
        return None
    return key, certificate


def _load_leaf(paths: CertDir, identity: Identity) -> tuple[ec.EllipticCurvePrivateKey | None, x509.Certificate] | None:
    """A leaf's certificate and (when it loads) key; None without a readable certificate."""
    try:
        certificate = load_certificate(paths.cert(identity))
    except (OSError, ValueError):
        return None
    try:
        key = serialization.load_pem_private_key(paths.key(identity).read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        key = None
    return (key if isinstance(key, ec.EllipticCurvePrivateKey) else None), certificate


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    _write_file(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()), mode=0o600)


def _write_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write atomically (a new file renamed over the old), created with `mode` so a key is never readable by
    others, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as handle:
        os.fchmod(handle.fileno(), mode)  # exactly `mode`, whatever the umask
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def _now() -> dt.datetime:
    # The wall clock, not services.common.clock: certificate validity is checked by TLS against the real time.
    return dt.datetime.now(dt.UTC)
