"""The stack configuration's dial overrides (services/stack/config.py): a party reaches a role at its
own port unless `dial` routes it elsewhere (the fault harness's proxies), and a configuration file
written before `dial` existed still loads."""

from __future__ import annotations

import json

from services.stack.config import StackConfig


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
