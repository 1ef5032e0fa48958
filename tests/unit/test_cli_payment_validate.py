"""The regions' hospital-payment files (services/regions/payment/<region>.toml, issue 13) and `clearing-admin payment
validate`: every shipped file parses with the core's parser, and a broken one is exit 2 naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli_offline import assert_operator_error, run

from clearing.errors import InvalidField
from services.common.regions import REGIONS_DIR, load_payment_params
from services.datagen.regions import demo_region_codes

REPO = Path(__file__).resolve().parents[2]
PAYMENT_DIR = REPO / "services" / "regions" / "payment"
GOOD = (PAYMENT_DIR / "440100.toml").read_text(encoding="utf-8")


def test_every_region_has_parameters() -> None:
    assert sorted(path.stem for path in PAYMENT_DIR.glob("*.toml")) == sorted(demo_region_codes())
    for region in demo_region_codes():
        params = load_payment_params(region)
        for hospital in params.global_budgets:
            assert hospital[1:7] == region
    assert load_payment_params("440100").provisional_point_value_fen == 9_000
    assert load_payment_params("610924").cross_region_in_drg is False  # the switch is exercised somewhere


def test_unknown_region_is_refused() -> None:
    with pytest.raises(InvalidField) as error:
        load_payment_params("999999")
    assert error.value.field == "region"


def test_broken_file_names_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "payment").mkdir()
    (tmp_path / "regions.toml").write_text((REGIONS_DIR / "regions.toml").read_text(encoding="utf-8"),
                                           encoding="utf-8")
    (tmp_path / "payment" / "440100.toml").write_text(GOOD.replace('"2" = 9500', '"2" = 0'), encoding="utf-8")
    with pytest.raises(InvalidField) as error:
        load_payment_params("440100", tmp_path)
    assert error.value.field == "440100.toml: hospital_payment.level_coefficient_bp.2"


def test_validate_every_shipped_file() -> None:
    files = sorted(PAYMENT_DIR.glob("*.toml"))
    result = run("payment", "validate", *files, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": OK") == len(files) == 7
    assert "10,000,000.00 yuan" in result.stdout  # 广州's DRG budget
    assert "cross-region stays in DRG: no (by item)" in result.stdout  # 紫阳县
    assert "H44010000004 6,000,000.00" in result.stdout  # 广州's 总额预付 hospital


def test_validate_names_file_and_key(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(GOOD, encoding="utf-8")
    bad.write_text(GOOD.replace("advance_share_bp = 8500", "advance_share_bp = 18500"), encoding="utf-8")
    assert_operator_error(run("payment", "validate", good, bad, cwd=tmp_path), f"payment {bad}",
                          "hospital_payment.advance_share_bp")
    bad.write_text(GOOD.replace("hold_back_bp", "holdback_bp"), encoding="utf-8")
    assert_operator_error(run("payment", "validate", bad, cwd=tmp_path), "holdback_bp")
    bad.write_text("[other]\n", encoding="utf-8")
    assert_operator_error(run("payment", "validate", bad, cwd=tmp_path), "hospital_payment", "required")


def test_validate_refuses_another_regions_hospital(tmp_path: Path) -> None:
    # A file named for 长沙 430100 with 广州's 总额预付 hospital: the key and the region are named.
    bad = tmp_path / "430100.toml"
    bad.write_text(GOOD, encoding="utf-8")
    line = assert_operator_error(run("payment", "validate", bad, cwd=tmp_path),
                                 "hospital_payment.global_budgets[0].hospital", "H44010000004")
    assert "430100" in line
