"""The settlement explanation and its Chinese and English text (SPEC §5.2): `clearing/explain.py`."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conftest import bill, catalogue, csv_row, line, member, policy, stay

from clearing.adjudicate import Adjudication, adjudicate
from clearing.classify import classify_bill
from clearing.explain import Step, render, render_en, render_zh
from clearing.member import Ytd
from clearing.policy import AssistanceTier

EVERY_KEY = {
    "line_note", "line_excluded", "line_over_cap", "line_preselfpay", "total", "inscp", "deductible", "eligible",
    "basic_band", "basic_cap", "hifp", "burden", "critical_threshold", "critical_band", "critical_cap", "hifmi",
    "assist_base", "assistance", "assistance_cap", "maf", "fund_pay", "psn_pay",
}


@pytest.fixture(scope="module")
def rich() -> Adjudication:
    """A stay that produces every step key: lines excluded for each reason, an over-cap and a grade B line,
    two basic bands, and all three caps hit."""
    book = catalogue(
        csv_row("A1", "N1", grade="A", price_cap_fen=800),
        csv_row("B1", "N2", grade="B", selfpay_bp=1000),
        csv_row("C1", "N3", grade="C"),
        csv_row("R1", "N4", grade="A", restriction="icd:E11"),
        csv_row("V1", "N5", grade="A", valid_from="2027-01-01"),
    )
    bill_ = bill(
        line("A1", "2", 1000, line_id="1", index=0),  # 2,000: over the cap (1000 − 800) × 2 = 400; 1,600 in scope
        line("B1", "1", 1_000_000, line_id="2", index=1),  # 1,000,000: 100,000 先行自付, 900,000 in scope
        line("C1", "1", 55_500, line_id="3", index=2),  # GRADE_C
        line("R1", "1", 10_000, line_id="4", index=3),  # RESTRICTED (diagnosis C34.1)
        line("ZZ", "1", 7_000, line_id="5", index=4),  # UNMAPPED
        line("V1", "1", 3_000, line_id="6", index=5),  # NOT_VALID_ON_DATE
    )
    lines = list(classify_bill(bill_, book))
    lines[0] = replace(lines[0], note="N1 → 430100 L100 (equivalent, of 2 candidates)")
    pol = policy(
        deductible_fen=100_000, annual_deductible_cap_fen=150_000, annual_cap_fen=600_000,
        bands=((500_000, 8000), (None, 9000)),
        critical={"threshold_fen": 100_000, "annual_cap_fen": 150_000, "bands": ((100_000, 6000), (None, 7000))},
        assistance={"dibao": {"deductible_fen": 50_000, "ratio_bp": 5000, "annual_cap_fen": 80_000}},
    )
    return adjudicate(tuple(lines), stay(), member(assistance=AssistanceTier.DIBAO), pol, Ytd(hifp_fen=100_000))


def test_rich_stay_numbers(rich: Adjudication) -> None:
    assert rich.total_fen == 1_077_500  # 2,000 + 1,000,000 + 55,500 + 10,000 + 7,000 + 3,000
    assert rich.inscp_fen == 901_600  # 1,600 + 900,000
    assert rich.deductible_fen == 100_000
    # uncapped: [0, 500,000) × 80 % = 400,000 + [500,000, 801,600) × 90 % = 271,440 → 671,440;
    # the cap 600,000 − 100,000 already paid leaves 500,000
    assert rich.hifp_fen == 500_000
    # burden 401,600: above the 100,000 threshold 301,600 → 100,000 × 60 % + 201,600 × 70 % = 201,120; cap 150,000
    assert rich.hifmi_fen == 150_000
    # r = 901,600 − 500,000 − 150,000 = 251,600; above 50,000: 201,600 × 50 % = 100,800; cap 80,000
    assert rich.maf_fen == 80_000
    assert rich.psn_pay_fen == 347_500  # 1,077,500 − 730,000


def test_every_step_key_is_produced_and_in_order(rich: Adjudication) -> None:
    keys = [step.key for step in rich.explanation]
    assert set(keys) == EVERY_KEY
    assert keys[-2:] == ["fund_pay", "psn_pay"]
    order = ["total", "inscp", "deductible", "eligible", "hifp", "burden", "hifmi", "assist_base", "maf"]
    assert [keys.index(key) for key in order] == sorted(keys.index(key) for key in order)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_step_renders_in_both_languages(rich: Adjudication, language: str) -> None:
    texts = render(rich.explanation, language)
    assert len(texts) == len(rich.explanation)
    assert all(text.strip() for text in texts)


def test_english_text_mentions_bands_caps_and_excluded_lines(rich: Adjudication) -> None:
    text = "\n".join(render(rich.explanation, "en"))
    assert "basic fund band 1 (0.00–5,000.00) at 80% pays 4,000.00" in text
    assert "basic fund band 2 (5,000.00–8,016.00) at 90% pays 2,714.40" in text
    assert "basic fund annual cap 6,000.00, 5,000.00 left: pays 5,000.00" in text
    assert "critical-illness annual cap 1,500.00, 1,500.00 left: pays 1,500.00" in text
    assert "medical-assistance annual cap 800.00, 800.00 left: pays 800.00" in text
    assert "line 3 C1: 555.00 fully self-paid (grade C item, not covered)" in text
    assert "line 4 R1: 100.00 fully self-paid (payment restriction not met by the diagnoses)" in text
    assert "line 5 ZZ: 70.00 fully self-paid (no catalogue mapping (flagged for audit))" in text
    assert "line 6 V1: 30.00 fully self-paid (not valid in the catalogue on the service date)" in text
    assert "line 1 A1: unit price 10.00 above the cap 8.00; 4.00 self-paid over the cap" in text
    assert "line 2 B1: grade B, 10% self-paid first = 1,000.00" in text
    assert "line 1: classified by the insured region's catalogue, N1 → 430100 L100 (equivalent, of 2 candidates)" in text
    assert "1,000.00 per stay at a level-3 hospital, 1,500.00 left under the annual deductible cap; this stay 1,000.00" \
        in text
    assert "the patient pays 3,475.00" in text


def test_chinese_text_mentions_bands_caps_and_excluded_lines(rich: Adjudication) -> None:
    text = "\n".join(render(rich.explanation, "zh"))
    assert "统筹基金第2段（5,000.00–8,016.00 元）按 90% 支付 2,714.40 元" in text
    assert "统筹基金年度限额 6,000.00 元，剩余 5,000.00 元，封顶后支付 5,000.00 元" in text
    assert "大病保险第1段（起付线以上 0.00–1,000.00 元）按 60% 支付 600.00 元" in text
    assert "大病保险年度限额 1,500.00 元" in text
    assert "医疗救助年度限额 800.00 元" in text
    assert "第3行 C1：全自费 555.00 元（丙类项目，不予支付）" in text
    assert "第4行 R1：全自费 100.00 元（不符合限定支付范围）" in text
    assert "第5行 ZZ：全自费 70.00 元（无对应目录编码（已标记稽核））" in text
    assert "第6行 V1：全自费 30.00 元（服务日期不在目录有效期内）" in text
    assert "超限价自付 4.00 元" in text
    assert "乙类先行自付 10%，计 1,000.00 元" in text
    assert "个人支付 3,475.00 元" in text


def test_basic_band_sentence_names_every_adjustment() -> None:
    step = Step("basic_band", 76_500, {"band": 1, "from_fen": 5_000_000, "to_fen": 5_090_000, "ratio_bp": 8500,
                                       "base_bp": 8000, "retired_bp": 500, "poverty_bp": 1000, "cut_bp": 1000})
    assert render_en(step) == ("basic fund band 2 (50,000.00–50,900.00) at 85% pays 765.00 "
                               "(base 80%, retired +5%, poverty +10%, filing -10%)")
    assert render_zh(step) == ("统筹基金第2段（50,000.00–50,900.00 元）按 85% 支付 765.00 元"
                               "（基础 80%，退休 +5%，困难 +10%，备案 -10%）")


def test_deductible_without_annual_cap_omits_the_year_left() -> None:
    step = Step("deductible", 120_000, {"level": 3, "per_stay_fen": 120_000})
    assert render_en(step) == "deductible: 1,200.00 per stay at a level-3 hospital; this stay 1,200.00"
    assert render_zh(step) == "起付线：3级医院每次 1,200.00 元，本次计 1,200.00 元"


def test_no_assistance_section_sentence_says_why_nothing_is_paid() -> None:
    step = Step("assistance_none", 0, {"tier": "dibao"})
    assert render_en(step) == ("medical assistance (dibao): the insured region's policy has no medical assistance, "
                               "pays 0.00")
    assert render_zh(step) == "医疗救助（dibao）：参保地政策未设医疗救助，支付 0.00 元"


def test_unknown_step_key_is_a_programmer_error() -> None:
    with pytest.raises(AssertionError):
        render_en(Step("bonus", 1))
    with pytest.raises(AssertionError):
        render_zh(Step("bonus", 1))


def test_percentages_drop_trailing_zeros():
    from clearing.explain import percent

    assert (percent(650), percent(655), percent(6500)) == ("6.5%", "6.55%", "65%")
