"""Shared builders for the hospital-payment tests: the example parameters, a small weight table, stays."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from clearing.hospital_payment import (
    PaymentCase, PaymentParams, Weight, WeightSource, WeightTable, parse_payment_params,
)

EXAMPLE_TOML = (Path(__file__).parent / "region_payment_example.toml").read_text(encoding="utf-8")


def example_params(**changes: object) -> PaymentParams:
    return replace(parse_payment_params(EXAMPLE_TOML), **changes)


# ER31: RW 1.5 (150 base points), average cost 300 yuan; FR19: RW 0.8, average 160 yuan.
WEIGHTS = WeightTable(
    weights={
        "ER31": Weight("ER31", rw_e4=15_000, average_cost_fen=30_000, cases=10, source=WeightSource.DRG),
        "FR19": Weight("FR19", rw_e4=8_000, average_cost_fen=16_000, cases=7, source=WeightSource.DRG),
    },
    all_cases=100, all_cost_fen=2_000_000,
)

DAY0 = date(2026, 3, 1)


def stay(case_id: str, *, hospital: str = "H44010000001", level: int = 3, drg: str = "ER31",
         cost_fen: int = 30_000, los_days: int = 8, member_key: str | None = None, admitted_on: date = DAY0,
         principal_diagnosis: str = "J80.x00", main_procedure: str = "", cross_region: bool = False,
         readmission_justified: bool = False) -> PaymentCase:
    return PaymentCase(
        case_id=case_id, hospital=hospital, hospital_level=level, member_key=member_key or f"m-{case_id}",
        drg=drg, principal_diagnosis=principal_diagnosis, main_procedure=main_procedure, los_days=los_days,
        admitted_on=admitted_on, discharged_on=admitted_on + timedelta(days=los_days), cost_fen=cost_fen,
        cross_region=cross_region, readmission_justified=readmission_justified,
    )
