"""The development CA and leaves (services/security/certs.py): what the certificates contain, the layout on
disk, idempotent init, rotation, the deny list."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from clearing.errors import InvalidField
from services.security import certs
from services.security.certs import CertDir
from services.security.identity import agency, clearinghouse, his_simulator, hospital, operator

REGIONS = ["440100", "430100"]
HOSPITALS = ["H44010000001", "H43010000002"]


@pytest.fixture
def cert_dir(tmp_path: Path) -> Path:
    certs.init(tmp_path / "certs", REGIONS, HOSPITALS, ["admin"])
    return tmp_path / "certs"


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_ca_contents(cert_dir: Path) -> None:
    ca = load(CertDir(cert_dir).ca_cert)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey) and ca.public_key().curve.name == "secp256r1"
    assert ca.subject == ca.issuer


@pytest.mark.parametrize("identity", [clearinghouse(), agency("440100"), his_simulator()])
def test_server_leaf_contents(cert_dir: Path, identity) -> None:  # noqa: ANN001
    paths = CertDir(cert_dir)
    leaf = load(paths.cert(identity))
    leaf.verify_directly_issued_by(load(paths.ca_cert))
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey) and leaf.public_key().curve.name == "secp256r1"
    constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [identity.spiffe_id]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert lifetime == dt.timedelta(days=certs.DEFAULT_DAYS)


@pytest.mark.parametrize("identity", [hospital("H44010000001"), operator("admin")])
def test_client_leaf_has_only_its_spiffe_id(cert_dir: Path, identity) -> None:  # noqa: ANN001
    leaf = load(CertDir(cert_dir).cert(identity))
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [name.value for name in san] == [identity.spiffe_id]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def test_layout_and_secret_modes(cert_dir: Path) -> None:
    paths = CertDir(cert_dir)
    expected = {clearinghouse(), his_simulator(), operator("admin"), *map(agency, REGIONS), *map(hospital, HOSPITALS)}
    assert set(paths.identities()) == expected
    assert (cert_dir / "agency/440100/cert.pem").exists() and (cert_dir / "hospital/H44010000001/key.pem").exists()
    for secret in [paths.ca_key, *(paths.key(identity) for identity in expected)]:
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    assert certs.read_deny_list(paths.revoked) == frozenset()
    assert not list(cert_dir.glob("**/*.partial"))


def test_init_keeps_valid_files_and_replaces_bad_ones(cert_dir: Path) -> None:
    paths = CertDir(cert_dir)
    before = {identity: paths.cert(identity).read_bytes() for identity in paths.identities()}
    report = certs.init(cert_dir, REGIONS, HOSPITALS, ["admin"])
    assert not report.ca_issued and not report.issued and set(report.kept) == set(before)
    assert all(paths.cert(identity).read_bytes() == pem for identity, pem in before.items())
    # a broken certificate, a revoked one and an expired one are issued again; the rest stay
    paths.cert(agency("440100")).write_text("garbage")
    paths.key(his_simulator()).unlink()
    certs.revoke(cert_dir, hospital("H44010000001"))
    certs.issue(cert_dir, operator("admin"), days=1, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    report = certs.init(cert_dir, REGIONS, HOSPITALS, ["admin"])
    assert set(report.issued) == {agency("440100"), his_simulator(), hospital("H44010000001"), operator("admin")}
    assert paths.cert(clearinghouse()).read_bytes() == before[clearinghouse()]


def test_force_makes_a_new_ca_and_reissues_everything(cert_dir: Path) -> None:
    paths = CertDir(cert_dir)
    old_ca = paths.ca_cert.read_bytes()
    report = certs.init(cert_dir, REGIONS, HOSPITALS, ["admin"], force=True)
    assert report.ca_issued and not report.kept and len(report.issued) == 7
    assert paths.ca_cert.read_bytes() != old_ca
    load(paths.cert(clearinghouse())).verify_directly_issued_by(load(paths.ca_cert))


def test_issue_rotates_one_leaf(cert_dir: Path) -> None:
    paths = CertDir(cert_dir)
    old = load(paths.cert(agency("440100")))
    info = certs.issue(cert_dir, agency("440100"), days=30)
    new = load(paths.cert(agency("440100")))
    assert new.serial_number == info.serial != old.serial_number
    assert new.not_valid_after_utc - new.not_valid_before_utc == dt.timedelta(days=30)
    assert info.problem == "" and not info.revoked


def test_issue_needs_a_ca(tmp_path: Path) -> None:
    with pytest.raises(InvalidField, match="no valid CA"):
        certs.issue(tmp_path, agency("440100"))


def test_revoke_appends_the_current_serial(cert_dir: Path) -> None:
    paths = CertDir(cert_dir)
    serial = load(paths.cert(hospital("H43010000002"))).serial_number
    assert certs.revoke(cert_dir, hospital("H43010000002")) == serial
    certs.revoke(cert_dir, hospital("H43010000002"))  # twice: listed once
    text = paths.revoked.read_text()
    assert text.count(certs.format_serial(serial)) == 1
    assert certs.read_deny_list(paths.revoked) == {serial}
    shown = {info.identity: info for info in certs.show(cert_dir)}
    assert shown[hospital("H43010000002")].revoked and not shown[hospital("H44010000001")].revoked
    with pytest.raises(InvalidField, match="no certificate"):
        certs.revoke(cert_dir, operator("nobody"))


def test_show_names_problems(cert_dir: Path, tmp_path: Path) -> None:
    certs.issue(cert_dir, operator("admin"), days=1, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    other = tmp_path / "other"
    certs.init(other, [], [], ["admin"])
    for name in ("cert.pem", "key.pem"):
        (cert_dir / "clearinghouse" / name).write_bytes((other / "clearinghouse" / name).read_bytes())
    (cert_dir / "agency/430100/key.pem").unlink()
    problems = {info.identity: info.problem for info in certs.show(cert_dir)}
    assert problems[agency("430100")] == "key.pem missing or unreadable"
    assert problems[operator("admin")] == "expired"
    assert problems[clearinghouse()] == "not issued by this CA"
    assert problems[agency("440100")] == ""


def test_deny_list_parsing() -> None:
    text = "# header\n\n0A:1b  # someone\n0xff\n  abc123  \n"
    assert certs.parse_deny_list(text) == {0x0A1B, 0xFF, 0xABC123}
    with pytest.raises(ValueError, match="line 2"):
        certs.parse_deny_list("ff\nnot-hex\n")
    assert certs.parse_serial(certs.format_serial(2**158 + 5)) == 2**158 + 5


def test_deny_list_follows_its_file(tmp_path: Path) -> None:
    from services.security.tls import DenyList

    path = tmp_path / "revoked.txt"
    denied = DenyList(path, check_interval_s=0)
    assert not denied.is_revoked(0xAB)  # no file: nothing revoked
    path.write_text("ab\n")
    assert denied.is_revoked(0xAB) and not denied.is_revoked(0xCD)
    path.write_text("ab\ncd\n")  # rewritten in place: its mtime and size change
    assert denied.is_revoked(0xCD)
    path.write_text("ab\nnot a serial\n")  # a bad edit keeps the last list read: nothing is un-revoked
    assert denied.is_revoked(0xAB) and denied.is_revoked(0xCD)
    path.unlink()
    assert not denied.is_revoked(0xAB)


def test_deny_list_is_read_at_most_once_per_interval(tmp_path: Path) -> None:
    from services.security.tls import DenyList

    path = tmp_path / "revoked.txt"
    path.write_text("")
    denied = DenyList(path, check_interval_s=3600)
    path.write_text("ab\n")
    assert not denied.is_revoked(0xAB)  # not looked at again yet
    denied.checked_at = float("-inf")
    assert denied.is_revoked(0xAB)
