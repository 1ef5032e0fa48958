"""Who a party is: its SPIFFE identity, carried in one URI SAN of its certificate (SPEC §9, docs/security.md).

Trust domain `clearing.local`; the path names the party:

| identity                                   | who                                                          |
|--------------------------------------------|--------------------------------------------------------------|
| `spiffe://clearing.local/clearinghouse`    | the clearing house                                           |
| `spiffe://clearing.local/agency/440100`    | a region's process: its treating and its insured agency      |
| `spiffe://clearing.local/hospital/H44010000001` | a designated hospital (its HIS); the 6 digits after H are its region |
| `spiffe://clearing.local/operator/admin`   | a named operator (`clearing-admin`)                          |
| `spiffe://clearing.local/simulator/his`    | the HIS simulator's own server (it calls as each hospital)   |

The same path names the identity's directory in a certificate directory (`services/security/certs.py`).
A server learns its caller's identity from the TLS handshake (`peer_identity`), never from a request field.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from clearing.errors import Unauthenticated

TRUST_DOMAIN = "clearing.local"
SPIFFE_PREFIX = f"spiffe://{TRUST_DOMAIN}/"

CLEARINGHOUSE = "clearinghouse"
AGENCY = "agency"
HOSPITAL = "hospital"
OPERATOR = "operator"
SIMULATOR = "simulator"
ROLES = (CLEARINGHOUSE, AGENCY, HOSPITAL, OPERATOR, SIMULATOR)

_REGION = re.compile(r"[0-9]{6}")
_HOSPITAL = re.compile(r"H[0-9]{11}")
_OPERATOR = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
_SIMULATORS = ("his",)


class IdentityError(ValueError):
    """A role path or SPIFFE id that names no valid identity; the message says what is wrong."""


@dataclass(frozen=True, slots=True, order=True)
class Identity:
    """A party's identity: `role` is one of ROLES, `subject` the region, hospital code, operator name,
    simulator name, or "" for the clearing house. Construction validates both."""

    role: str
    subject: str = ""

    def __post_init__(self) -> None:
        check_subject(self.role, self.subject)

    @property
    def path(self) -> str:
        """`agency/440100`, `clearinghouse`: the SPIFFE path and the directory in a certificate directory."""
        return f"{self.role}/{self.subject}" if self.subject else self.role

    @property
    def spiffe_id(self) -> str:
        return SPIFFE_PREFIX + self.path

    def __str__(self) -> str:
        return self.spiffe_id

    @classmethod
    def from_path(cls, path: str) -> Identity:
        """`agency/440100` → Identity("agency", "440100"); IdentityError when it names nothing valid."""
        role, _, subject = path.partition("/")
        if "/" in subject or (path.endswith("/") and not subject):
            raise IdentityError(f"{path!r}: expected ROLE or ROLE/SUBJECT")
        return cls(role, subject)

    @classmethod
    def parse(cls, uri: str) -> Identity:
        """The identity a SPIFFE id names; IdentityError for another scheme, trust domain or path."""
        if not uri.startswith(SPIFFE_PREFIX):
            raise IdentityError(f"{uri!r}: not an identity of {SPIFFE_PREFIX}")
        return cls.from_path(uri.removeprefix(SPIFFE_PREFIX))


def clearinghouse() -> Identity:
    return Identity(CLEARINGHOUSE)


def agency(region: str) -> Identity:
    return Identity(AGENCY, region)


def hospital(code: str) -> Identity:
    return Identity(HOSPITAL, code)


def operator(name: str) -> Identity:
    return Identity(OPERATOR, name)


def his_simulator() -> Identity:
    return Identity(SIMULATOR, "his")


def check_subject(role: str, subject: str) -> None:
    """IdentityError unless `subject` is valid for `role`."""
    if not isinstance(role, str) or not isinstance(subject, str):
        raise IdentityError("role and subject must be strings")
    if role == CLEARINGHOUSE:
        if subject:
            raise IdentityError(f"{role}: takes no subject, got {subject!r}")
    elif role == AGENCY:
        if not _REGION.fullmatch(subject):
            raise IdentityError(f"{role}/{subject}: must be a 6-digit region code such as 440100")
    elif role == HOSPITAL:
        if not _HOSPITAL.fullmatch(subject):
            raise IdentityError(f"{role}/{subject}: must be H + 6-digit region + 5 digits, such as H44010000001")
    elif role == OPERATOR:
        if not _OPERATOR.fullmatch(subject):
            raise IdentityError(f"{role}/{subject}: an operator name is 1–32 of a-z 0-9 . _ -, "
                                "starting with a letter or digit")
    elif role == SIMULATOR:
        if subject not in _SIMULATORS:
            raise IdentityError(f"{role}/{subject}: the only simulator is `his`")
    else:
        raise IdentityError(f"{role!r}: unknown role, expected one of {', '.join(ROLES)}")


def hospital_region(identity: Identity) -> str:
    """The region of a hospital identity (the 6 digits after H)."""
    assert identity.role == HOSPITAL, identity
    return identity.subject[1:7]


# ---------------------------------------------------------------------------------------------
# The caller's identity, from the TLS handshake
# ---------------------------------------------------------------------------------------------
# What grpc 1.85's auth_context() holds for a peer with one of our leaf certificates (each value a list of
# bytes; seen by a real server, tests/integration/test_tls.py::test_auth_context_of_a_leaf pins it):
#   transport_security_type [b"ssl"]    security_level [b"TSI_PRIVACY_AND_INTEGRITY"]    ssl_session_reused [b"false"]
#   ssl_tls_version [b"TLSv1.3"]        ssl_negotiated_key_exchange_group [b"X25519MLKEM768"]
#   x509_subject            [b"O=clearing.local,CN=agency/440100"]
#   x509_common_name        [b"agency/440100"]   (informative: never used for authorisation)
#   x509_subject_alternative_name  every SAN as text, URI, DNS and IP alike:
#                           [b"spiffe://clearing.local/agency/440100", b"localhost", b"127.0.0.1", b"::1"]
#                           (this is the peer identity key: context.peer_identities() returns this list)
#   peer_uri                the URI SANs  [b"spiffe://clearing.local/agency/440100"]
#   peer_dns, peer_ip       the DNS and IP SANs (absent when the certificate has none: hospitals, operators)
#   peer_spiffe_id          [b"spiffe://clearing.local/agency/440100"]: set by grpc core only when the
#                           certificate has exactly one URI SAN and it is a well-formed SPIFFE id
#   x509_pem_cert           [the peer's leaf certificate, PEM]
# Without TLS (an insecure port) it is empty: peer_identity raises Unauthenticated.


@dataclass(frozen=True, slots=True)
class Peer:
    """The caller as its certificate names it: identity and the certificate's serial number."""

    identity: Identity
    serial: int


def peer_identity(context: Any) -> Peer:
    """The identity and certificate serial of the caller of a grpc.aio ServicerContext.

    Raises Unauthenticated when the call did not come over mutual TLS, or the certificate names no valid
    identity of our trust domain (no SPIFFE id, several URI SANs, a malformed path)."""
    properties = context.auth_context() or {}
    spiffe_ids = properties.get("peer_spiffe_id") or []
    if len(spiffe_ids) != 1:
        # grpc leaves peer_spiffe_id out unless there is exactly one valid SPIFFE URI SAN; say why.
        uris = properties.get("peer_uri") or []
        if not properties.get("x509_pem_cert"):
            raise Unauthenticated("no client certificate: the call did not come over mutual TLS")
        raise Unauthenticated(f"the client certificate carries {len(uris)} URI SANs, expected exactly one SPIFFE id")
    try:
        identity = Identity.parse(spiffe_ids[0].decode("ascii"))
    except (UnicodeDecodeError, IdentityError) as error:
        raise Unauthenticated(f"the client certificate names no identity of {TRUST_DOMAIN}: {error}") from None
    pem = (properties.get("x509_pem_cert") or [b""])[0]
    return Peer(identity, certificate_serial(pem))


@functools.lru_cache(maxsize=1024)
def certificate_serial(pem: bytes) -> int:
    """The serial number of a PEM certificate (cached: a client sends the same certificate on every call)."""
    try:
        return x509.load_pem_x509_certificate(pem).serial_number
    except ValueError:
        raise Unauthenticated("the client certificate cannot be parsed") from None
