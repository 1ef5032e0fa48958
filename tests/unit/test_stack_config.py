"""The stack configuration (services/stack/config.py): a party reaches a role at its own port unless `dial`
routes it elsewhere (the fault harness's proxies), and a configuration file written before `dial` existed
still loads; every party speaks mutual TLS from the configured certificate directory, plaintext only when the
configuration says `insecure`; tools call as the operator named, by $CLEARING_OPERATOR or `admin`."""

from __future__ import annotations

import json

import pytest

from services.security.identity import IdentityError, operator
from services.security.party import Transport
from services.stack.config import OPERATOR_ENV, StackConfig, operator_identity


def config(**overrides) -> StackConfig:  # noqa: ANN003
    return StackConfig(base_dsn="postgresql:///postgres", clearing_house_port=4000, his_port=4001,
                       region_ports={"440100": 4002, "430100": 4003}, **overrides)


def test_without_overrides_every_role_is_dialled_at_its_own_port():
    plain = config()
    assert plain.dial_address("clearinghouse") == "127.0.0.1:4000"
    assert plain.dial_address("his") == "127.0.0.1:4001"
    assert plain.dial_address("region:430100") == "127.0.0.1:4003"


def test_an_override_routes_only_its_own_role():
    proxied = config(dial={"clearinghouse": "127.0.0.1:5000"})
    assert proxied.dial_address("clearinghouse") == "127.0.0.1:5000"
    assert proxied.dial_address("region:440100") == "127.0.0.1:4002"
    assert proxied.role_port("clearinghouse") == 4000  # where it listens does not change


def test_a_file_written_before_dial_existed_loads_with_no_overrides(tmp_path):
    path = tmp_path / "stack.json"
    saved = config()
    saved.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["dial"]
    path.write_text(json.dumps(data), encoding="utf-8")
    assert StackConfig.load(path).dial == {}
    proxied = config(dial={"region:440100": "127.0.0.1:5002"})
    proxied.save(path)
    assert StackConfig.load(path) == proxied


def test_the_transport_is_mutual_tls_from_the_certificate_directory_unless_insecure(tmp_path):
    secure = config(certs_dir=str(tmp_path / "certs"))
    assert secure.transport() == Transport.tls(tmp_path / "certs")
    assert not secure.transport().insecure
    assert config(insecure=True).transport() == Transport.plaintext()
    with pytest.raises(ValueError, match="certs_dir"):
        config().transport()  # neither a directory nor insecure: refused, never plaintext by default


def test_a_file_written_before_tls_existed_loads_and_asks_for_a_restart(tmp_path):
    path = tmp_path / "stack.json"
    config().save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["certs_dir"], data["insecure"]
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = StackConfig.load(path)
    assert (loaded.certs_dir, loaded.insecure) == ("", False)
    with pytest.raises(ValueError, match="stack up"):
        loaded.transport()


def test_the_operator_comes_from_the_name_the_environment_or_admin(monkeypatch):
    monkeypatch.delenv(OPERATOR_ENV, raising=False)
    assert operator_identity() == operator("admin")
    monkeypatch.setenv(OPERATOR_ENV, "ops-1")
    assert operator_identity() == operator("ops-1")
    assert operator_identity("bob") == operator("bob")
    with pytest.raises(IdentityError):
        operator_identity("Not An Operator")


def test_the_call_limits_travel_in_the_configuration_file_to_every_party(tmp_path):
    from services.security.identity import hospital
    from services.security.limits import DEFAULT_LIMITS, Limit

    path = tmp_path / "stack.json"
    saved = config(certs_dir=str(tmp_path / "certs"),
                   limits={"roles": {"hospital": {"rate_per_s": 50, "burst": 100, "concurrent": 16}},
                           "identities": {"hospital/H44010000001": {"concurrent": 2}}})
    saved.save(path)
    limits = StackConfig.load(path).transport().limits
    assert limits.limit_for(hospital("H44010000001")) == Limit(50, 100, 2)
    assert limits.limit_for(hospital("H44010000002")) == Limit(50, 100, 16)
    assert config(insecure=True).transport().limits.limit_for(hospital("H44010000002")) == DEFAULT_LIMITS["hospital"]
    with pytest.raises(ValueError, match="limits.roles.doctor"):
        config(certs_dir="c", limits={"roles": {"doctor": {}}}).transport()
