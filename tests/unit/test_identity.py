"""The identity scheme (services/security/identity.py): SPIFFE ids and role paths, valid and not."""

from __future__ import annotations

import pytest

from clearing.errors import Unauthenticated
from services.security import identity as ids
from services.security.identity import Identity, IdentityError, peer_identity


@pytest.mark.parametrize(("uri", "role", "subject"), [
    ("spiffe://clearing.local/clearinghouse", "clearinghouse", ""),
    ("spiffe://clearing.local/agency/440100", "agency", "440100"),
    ("spiffe://clearing.local/hospital/H44010000456", "hospital", "H44010000456"),
    ("spiffe://clearing.local/operator/admin", "operator", "admin"),
    ("spiffe://clearing.local/operator/li.wei-2_x", "operator", "li.wei-2_x"),
    ("spiffe://clearing.local/operator/" + "a" * 32, "operator", "a" * 32),
    ("spiffe://clearing.local/simulator/his", "simulator", "his"),
])
def test_parse_round_trips(uri: str, role: str, subject: str) -> None:
    parsed = Identity.parse(uri)
    assert (parsed.role, parsed.subject) == (role, subject)
    assert parsed.spiffe_id == uri
    assert Identity.from_path(parsed.path) == parsed


@pytest.mark.parametrize("uri", [
    "spiffe://other.domain/agency/440100",          # another trust domain
    "spiffe://clearing.local.evil/agency/440100",   # a domain that merely starts like ours
    "https://clearing.local/agency/440100",         # another scheme
    "spiffe://clearing.local/",                     # no path
    "spiffe://clearing.local/agency",               # a region agency without its region
    "spiffe://clearing.local/agency/44010",         # 5 digits
    "spiffe://clearing.local/agency/4401000",       # 7 digits
    "spiffe://clearing.local/agency/44010a",
    "spiffe://clearing.local/agency/440100/",       # a trailing slash
    "spiffe://clearing.local/clearinghouse/",
    "spiffe://clearing.local/agency/440100/x",      # too many segments
    "spiffe://clearing.local/hospital/44010000456",  # no H
    "spiffe://clearing.local/hospital/h44010000456",  # lower-case h
    "spiffe://clearing.local/hospital/H4401000045",  # 10 digits
    "spiffe://clearing.local/hospital/H440100004567",  # 12 digits
    "spiffe://clearing.local/clearinghouse/x",      # the clearing house takes no subject
    "spiffe://clearing.local/operator/",            # empty name
    "spiffe://clearing.local/operator/Admin",       # upper case
    "spiffe://clearing.local/operator/-admin",      # must start with a letter or digit
    "spiffe://clearing.local/operator/" + "a" * 33,  # too long
    "spiffe://clearing.local/operator/a b",
    "spiffe://clearing.local/simulator/treating",   # the only simulator is his
    "spiffe://clearing.local/insured/440100",       # unknown role
    "spiffe://clearing.local/Agency/440100",
])
def test_parse_refuses(uri: str) -> None:
    with pytest.raises(IdentityError):
        Identity.parse(uri)


def test_constructor_validates() -> None:
    with pytest.raises(IdentityError):
        Identity("agency", "4401")
    with pytest.raises(IdentityError):
        Identity("clearinghouse", "440100")
    assert ids.agency("440100") == Identity("agency", "440100")
    assert ids.hospital("H44010000001").path == "hospital/H44010000001"
    assert str(ids.clearinghouse()) == "spiffe://clearing.local/clearinghouse"
    assert ids.his_simulator().spiffe_id == "spiffe://clearing.local/simulator/his"
    assert ids.hospital_region(ids.hospital("H43010000007")) == "430100"


class FakeContext:
    """A ServicerContext reduced to `auth_context()`, holding what grpc 1.85 puts there."""

    def __init__(self, properties: dict[str, list[bytes]]) -> None:
        self.properties = properties

    def auth_context(self) -> dict[str, list[bytes]]:
        return self.properties


def test_peer_identity_refuses_without_mtls() -> None:
    with pytest.raises(Unauthenticated, match="no client certificate"):
        peer_identity(FakeContext({}))


def test_peer_identity_refuses_a_foreign_or_malformed_spiffe_id() -> None:
    with pytest.raises(Unauthenticated, match="no identity of clearing.local"):
        peer_identity(FakeContext({"peer_spiffe_id": [b"spiffe://other.domain/agency/440100"],
                                   "x509_pem_cert": [b"x"]}))
    with pytest.raises(Unauthenticated, match="2 URI SANs"):
        peer_identity(FakeContext({"peer_uri": [b"spiffe://clearing.local/agency/440100",
                                                b"spiffe://clearing.local/clearinghouse"],
                                   "x509_pem_cert": [b"x"]}))
