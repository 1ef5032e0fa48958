"""What a client says when a call fails at the TLS handshake (`tls.describe_handshake_failure`): plainly that the
handshake failed, where to look, and what it finds wrong with its own certificate — or that nothing listens."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from services.security import certs
from services.security.identity import operator
from services.security.tls import certificate_problem, describe_handshake_failure

ADMIN = operator("admin")
ADDRESS = "127.0.0.1:4000"


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    certs.init(tmp_path / "certs", [], [], ["admin"])
    return tmp_path / "certs"


def test_a_valid_certificate_has_no_problem_and_the_message_says_where_to_look(directory: Path):
    assert certificate_problem(directory, ADMIN) == ""
    message = describe_handshake_failure(ADDRESS, directory, ADMIN, "failed to connect to all addresses; Socket closed")
    assert message.startswith(f"UNAVAILABLE: the TLS handshake with {ADDRESS} failed")
    assert str(directory) in message and "operator/admin" in message and "expired nor revoked" in message
    assert f"clearing-admin certs show {directory}" in message and "\n" not in message


def test_an_expired_certificate_is_named(directory: Path):
    certs.issue(directory, ADMIN, days=1, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    assert certificate_problem(directory, ADMIN) == "the certificate of operator/admin is expired"
    assert describe_handshake_failure(ADDRESS, directory, ADMIN).endswith("the certificate of operator/admin is expired")


def test_a_revoked_certificate_is_named(directory: Path):
    certs.revoke(directory, ADMIN)
    assert certificate_problem(directory, ADMIN) == "the certificate of operator/admin is revoked"


def test_a_certificate_of_another_ca_is_named(directory: Path, tmp_path: Path):
    certs.init(tmp_path / "other", [], [], ["admin"])
    for name in ("cert.pem", "key.pem"):
        (directory / "operator" / "admin" / name).write_bytes((tmp_path / "other" / "operator" / "admin" / name)
                                                              .read_bytes())
    assert certificate_problem(directory, ADMIN) == "the certificate of operator/admin: not issued by this CA"


def test_a_missing_certificate_is_named(directory: Path):
    assert "cannot read the certificate of operator/bob" in certificate_problem(directory, operator("bob"))


def test_a_refused_connection_is_not_taken_for_a_handshake(directory: Path):
    message = describe_handshake_failure(ADDRESS, directory, ADMIN, "failed to connect to all addresses; last error: "
                                         "UNAVAILABLE: ipv4:127.0.0.1:4000: Connection refused")
    assert "nothing answers" in message and "stack up" in message and "handshake" not in message
