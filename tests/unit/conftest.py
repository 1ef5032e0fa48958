"""Builders for tiny catalogues, bills, policies, members and classified lines (tests of `clearing/` only).

Plain functions, imported by the unit tests as `from conftest import …` (pytest's default `prepend`
import mode puts this directory on `sys.path`). They build *inputs*; no builder computes an expected
result with the code under test. The one derived number, a line's `amount_fen` when a test leaves it
out, comes from `Decimal` with `ROUND_HALF_UP` — an oracle independent of `clearing.money`.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from clearing.adjudicate import StayFacts
from clearing.bill import Bill, BillLine, make_bill, make_line
from clearing.catalogue import Catalogue, Grade, parse_catalogue_csv
from clearing.classify import LineClass, Reason
from clearing.member import Member
from clearing.policy import AssistanceTier, FilingStatus, Policy, Scheme, parse_policy

TREATING_REGION = "440100"  # 广州市: where the hospital is
INSURED_REGION = "430100"  # 长沙市: where the member is insured
HOSPITAL_CODE = "H44010000001"
HEADER = ("local_code,national_code,relation,kind,name,grade,selfpay_bp,price_cap_fen,restriction,"
          "valid_from,valid_to")


# ---------------------------------------------------------------------------------------------
# Catalogues (SPEC §4.1)

def csv_row(
    local_code: str, national_code: str = "N0001", relation: str = "equivalent", kind: str = "drug",
    name: str = "item", grade: str = "A", selfpay_bp: str | int = "0", price_cap_fen: str | int = "",
    restriction: str = "", valid_from: str = "2020-01-01", valid_to: str = "",
) -> str:
    """One CSV line in the SPEC §4.1 column order (restriction is quoted: it may hold commas)."""
    return (f"{local_code},{national_code},{relation},{kind},{name},{grade},{selfpay_bp},{price_cap_fen},"
            f"\"{restriction}\",{valid_from},{valid_to}")


def catalogue_csv(*rows: str) -> str:
    return "\n".join((HEADER, *rows)) + "\n"


def catalogue(*rows: str, region: str = TREATING_REGION) -> Catalogue:
    return parse_catalogue_csv(catalogue_csv(*rows), region)


# ---------------------------------------------------------------------------------------------
# Bills (SPEC §4.2, §5.3 B.json)

def half_up_amount_fen(qty: str, unit_price_fen: int) -> int:
    """`round_half_up(qty × unit_price)` by `Decimal`, independent of `clearing.money`."""
    return int((Decimal(qty) * unit_price_fen).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def line(
    code: str = "X0001", qty: str = "1", unit_price_fen: int = 1000, amount_fen: int | None = None,
    service_date: str = "2026-03-02", line_id: str = "1", index: int = 0,
) -> BillLine:
    if amount_fen is None:
        amount_fen = half_up_amount_fen(qty, unit_price_fen)
    return make_line(index, line_id, code, qty, unit_price_fen, amount_fen, service_date)


def bill(
    *lines: BillLine, region: str = TREATING_REGION, hospital_code: str = HOSPITAL_CODE, level: int = 3,
    admitted_on: str = "2026-03-01", discharged_on: str = "2026-03-10", emergency: bool = False,
    diagnoses: tuple[str, ...] = ("C34.1",),
) -> Bill:
    return make_bill(region, hospital_code, level, admitted_on, discharged_on, emergency, list(diagnoses),
                     tuple(lines))


def bill_dict(**overrides: Any) -> dict[str, Any]:
    """The SPEC §5.3 B.json example, with top-level keys replaced by `overrides`."""
    data: dict[str, Any] = {
        "region": TREATING_REGION, "hospital": {"code": HOSPITAL_CODE, "level": 3},
        "admitted_on": "2026-03-01", "discharged_on": "2026-03-10", "emergency": False,
        "diagnoses": ["C34.1"],
        "lines": [{"line_id": "1", "code": "X0001", "qty": "2", "unit_price_fen": 1500,
                   "amount_fen": 3000, "service_date": "2026-03-02"}],
    }
    data.update(overrides)
    return data


def bill_line_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"line_id": "1", "code": "X0001", "qty": "2", "unit_price_fen": 1500,
                            "amount_fen": 3000, "service_date": "2026-03-02"}
    data.update(overrides)
    return data


# ---------------------------------------------------------------------------------------------
# Policies (SPEC §5.1)

def _levels(value: int | tuple[int, int, int]) -> str:
    one, two, three = (value, value, value) if isinstance(value, int) else value
    return f'{{ "1" = {one}, "2" = {two}, "3" = {three} }}'


def policy_toml(
    *, region: str = INSURED_REGION, effective_from: str = "2026-01-01", scheme: str = "employee",
    deductible_fen: int | tuple[int, int, int] = 0,
    bands: tuple[tuple[int | None, int | tuple[int, int, int]], ...] = ((None, 10000),),
    annual_cap_fen: int = 0, annual_deductible_cap_fen: int = 0, retired_bonus_bp: int = 0,
    critical: dict[str, Any] | None = None, filing: dict[str, int] | None = None,
    poverty: dict[str, int] | None = None, assistance: dict[str, dict[str, int]] | None = None,
) -> str:
    """A policy file. `bands` is `((upto_fen or None, ratio_bp or per-level ratios), …)`;
    `critical` is `{"threshold_fen":…, "annual_cap_fen":…, "bands": ((upto_fen or None, ratio_bp), …)}`."""
    out = [f'region = "{region}"', 'name = "测试地区"', f'effective_from = "{effective_from}"', "",
           f"[schemes.{scheme}]", f"annual_cap_fen = {annual_cap_fen}",
           f"annual_deductible_cap_fen = {annual_deductible_cap_fen}", f"retired_bonus_bp = {retired_bonus_bp}",
           f"deductible_fen = {_levels(deductible_fen)}"]
    for upto_fen, ratio_bp in bands:
        out.append(f"[[schemes.{scheme}.bands]]")
        if upto_fen is not None:
            out.append(f"upto_fen = {upto_fen}")
        out.append(f"ratio_bp = {_levels(ratio_bp)}")
    if critical is not None:
        out += [f"[schemes.{scheme}.critical]", f"threshold_fen = {critical['threshold_fen']}",
                f"annual_cap_fen = {critical.get('annual_cap_fen', 0)}"]
        parts = [f"{{ ratio_bp = {ratio} }}" if upto is None else f"{{ upto_fen = {upto}, ratio_bp = {ratio} }}"
                 for upto, ratio in critical["bands"]]
        out.append(f"bands = [ {', '.join(parts)} ]")
    if filing is not None:
        out += ["[filing]", *(f"{key} = {value}" for key, value in filing.items())]
    if poverty is not None:
        out += ["[poverty]", *(f"{key} = {value}" for key, value in poverty.items())]
    for tier, table in (assistance or {}).items():
        out += [f"[assistance.{tier}]", *(f"{key} = {value}" for key, value in table.items())]
    return "\n".join(out) + "\n"


def policy(**kwargs: Any) -> Policy:
    return parse_policy(policy_toml(**kwargs))


# ---------------------------------------------------------------------------------------------
# Members and stays (SPEC §5.2 inputs)

def member(
    *, region: str = INSURED_REGION, scheme: Scheme = Scheme.EMPLOYEE, retired: bool = False,
    poverty: bool = False, assistance: AssistanceTier | None = None,
    filing: FilingStatus = FilingStatus.RESIDENT,
) -> Member:
    return Member(region, "M001", scheme, retired, poverty, assistance, filing)


def stay(
    *, level: int = 3, treating_region: str = TREATING_REGION, emergency: bool = False,
    admitted_on: date = date(2026, 3, 1), discharged_on: date = date(2026, 3, 10),
) -> StayFacts:
    return StayFacts(treating_region, level, admitted_on, discharged_on, emergency)


# ---------------------------------------------------------------------------------------------
# Classified lines for adjudication tests: the four parts are given, the amount is their sum.

def classified(
    *, inscp_fen: int = 0, fulamt_ownpay_fen: int = 0, overlmt_selfpay_fen: int = 0, preselfpay_fen: int = 0,
    line_id: str = "1", code: str = "X0001", reason: Reason | None = None, price_cap_fen: int | None = None,
    grade: Grade = Grade.A, selfpay_bp: int = 0,
) -> LineClass:
    amount_fen = inscp_fen + fulamt_ownpay_fen + overlmt_selfpay_fen + preselfpay_fen
    bill_line = BillLine(line_id, code, 10_000, amount_fen, amount_fen, date(2026, 3, 2))
    return LineClass(
        line=bill_line, catalogue_region=TREATING_REGION, catalogue_code=code, national_code="N0001",
        relation=None, kind=None, grade=grade, name="item", selfpay_bp=selfpay_bp, price_cap_fen=price_cap_fen,
        fulamt_ownpay_fen=fulamt_ownpay_fen, overlmt_selfpay_fen=overlmt_selfpay_fen,
        preselfpay_fen=preselfpay_fen, inscp_fen=inscp_fen, reason=reason,
    )
