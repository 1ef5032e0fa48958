"""The step-by-step explanation of a settlement, and its rendering in Chinese and English (SPEC §5.2).

The core records `Step`s (a key, an amount and the facts behind it); rendering turns them into
sentences. Every rendered amount is in yuan with two decimals; the step itself keeps fen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clearing.money import format_yuan
from clearing.values import compile_constructor


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a settlement: `key` names the rule, `amount_fen` its result, `facts` its inputs."""

    key: str
    amount_fen: int
    facts: dict[str, int | str] = field(default_factory=dict)


# A stay's explanation has a step per explained line and about a dozen more (clearing/values.py).
new_step = compile_constructor(Step)


def yuan(value: int | str) -> str:
    return format_yuan(int(value))


def percent(bp: int | str) -> str:
    whole, rest = divmod(int(bp), 100)
    return f"{whole}%" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0") + "%"


REASONS_ZH = {
    "GRADE_C": "丙类项目，不予支付", "UNMAPPED": "无对应目录编码（已标记稽核）", "RESTRICTED": "不符合限定支付范围",
    "NOT_VALID_ON_DATE": "服务日期不在目录有效期内", "OVER_CAP": "超过限价",
}
REASONS_EN = {
    "GRADE_C": "grade C item, not covered", "UNMAPPED": "no catalogue mapping (flagged for audit)",
    "RESTRICTED": "payment restriction not met by the diagnoses",
    "NOT_VALID_ON_DATE": "not valid in the catalogue on the service date", "OVER_CAP": "price above the cap",
}


# The outpatient special diseases (门诊慢特病, SPEC §13) by their policy key.
DISEASES_ZH = {
    "hypertension": "高血压", "diabetes": "糖尿病", "cancer_therapy": "恶性肿瘤门诊放化疗", "dialysis": "尿毒症透析",
    "transplant": "器官移植术后抗排异治疗",
}
DISEASES_EN = {
    "hypertension": "hypertension", "diabetes": "diabetes", "cancer_therapy": "outpatient cancer radio/chemotherapy",
    "dialysis": "dialysis for uraemia", "transplant": "anti-rejection therapy after a transplant",
}


def render_special_zh(step: Step) -> str | None:
    """The outpatient special-disease steps (clearing/outpatient) in Chinese; None for any other step."""
    f = step.facts
    a = yuan(step.amount_fen)
    name = DISEASES_ZH.get(str(f.get("disease", "")), "")
    match step.key:
        case "special_disease":
            until = f["valid_to"] or "长期"
            return f"门诊慢特病：{name}（认定有效期 {f['valid_from']} 至 {until}），就诊日 {f['visit_on']}"
        case "special_deductible":
            return (f"{name}年度起付线 {yuan(f['deductible_fen'])} 元，本年度尚余 {yuan(f['year_left_fen'])} 元，"
                    f"本次计 {a} 元")
        case "special_ratio":
            return (f"进入统筹支付的费用 {yuan(f['eligible_fen'])} 元，{f['level']}级医院按 {percent(f['ratio_bp'])} 计 {a} 元"
                    f"（基础 {percent(f['base_bp'])}，退休 +{percent(f['retired_bp'])}，备案 -{percent(f['cut_bp'])}）")
        case "special_annual_limit":
            return (f"{name}年度支付限额 {yuan(f['limit_fen'])} 元，本年度已支付 {yuan(f['used_fen'])} 元，"
                    f"剩余 {yuan(f['left_fen'])} 元，本次支付 {a} 元")
        case "special_monthly_limit":
            return (f"{name}月度定额（{f['month']}）{yuan(f['limit_fen'])} 元，本月已支付 {yuan(f['used_fen'])} 元，"
                    f"剩余 {yuan(f['left_fen'])} 元，本次支付 {a} 元")
        case "special_no_limit":
            kind = "年度支付限额" if f["kind"] == "annual" else "月度定额"
            return f"{name}不设{kind}，本次支付 {a} 元"
        case "special_inpatient_cap":
            if not int(f["annual_cap_fen"]):
                return f"与住院共用统筹基金年度限额：不封顶（已支付 {yuan(f['used_fen'])} 元），本次支付 {a} 元"
            return (f"与住院共用统筹基金年度限额 {yuan(f['annual_cap_fen'])} 元，已支付 {yuan(f['used_fen'])} 元，"
                    f"剩余 {yuan(f['left_fen'])} 元，本次支付 {a} 元")
        case "special_limit_left":
            which = f"{f['month']} 月度定额" if "month" in f else "年度支付限额"
            return f"本次结算后{name}{which}剩余 {a} 元"
    return None


def render_special_en(step: Step) -> str | None:
    """The outpatient special-disease steps in English; None for any other step."""
    f = step.facts
    a = yuan(step.amount_fen)
    name = DISEASES_EN.get(str(f.get("disease", "")), "")
    match step.key:
        case "special_disease":
            until = f["valid_to"] or "open-ended"
            return (f"outpatient special disease: {name} (recognised from {f['valid_from']} to {until}), "
                    f"visit on {f['visit_on']}")
        case "special_deductible":
            return (f"{name} deductible {yuan(f['deductible_fen'])} per year, {yuan(f['year_left_fen'])} of it left: "
                    f"this visit {a}")
        case "special_ratio":
            return (f"eligible {yuan(f['eligible_fen'])} at {percent(f['ratio_bp'])} (level-{f['level']} hospital) = {a} "
                    f"(base {percent(f['base_bp'])}, retired +{percent(f['retired_bp'])}, filing -{percent(f['cut_bp'])})")
        case "special_annual_limit":
            return (f"{name} annual limit {yuan(f['limit_fen'])}, {yuan(f['used_fen'])} paid this year, "
                    f"{yuan(f['left_fen'])} left: pays {a}")
        case "special_monthly_limit":
            return (f"{name} monthly limit for {f['month']} {yuan(f['limit_fen'])}, {yuan(f['used_fen'])} paid this month, "
                    f"{yuan(f['left_fen'])} left: pays {a}")
        case "special_no_limit":
            return f"{name} has no {f['kind']} limit: pays {a}"
        case "special_inpatient_cap":
            if not int(f["annual_cap_fen"]):
                return f"shared inpatient annual cap: none ({yuan(f['used_fen'])} paid this year): pays {a}"
            return (f"shared inpatient annual cap {yuan(f['annual_cap_fen'])}, {yuan(f['used_fen'])} paid this year, "
                    f"{yuan(f['left_fen'])} left: pays {a}")
        case "special_limit_left":
            which = f"monthly limit for {f['month']}" if "month" in f else "annual limit"
            return f"after this visit {a} of the {name} {which} is left"
    return None


def render_zh(step: Step) -> str:
    f = step.facts
    a = yuan(step.amount_fen)
    match step.key:
        case "line_excluded":
            return f"第{f['line_id']}行 {f['code']}：全自费 {a} 元（{REASONS_ZH[str(f['reason'])]}）"
        case "line_over_cap":
            return (f"第{f['line_id']}行 {f['code']}：单价 {yuan(f['unit_price_fen'])} 元超过限价 "
                    f"{yuan(f['price_cap_fen'])} 元，超限价自付 {a} 元")
        case "line_preselfpay":
            return f"第{f['line_id']}行 {f['code']}：乙类先行自付 {percent(f['selfpay_bp'])}，计 {a} 元"
        case "line_note":
            return f"第{f['line_id']}行：按参保地目录 {f['note']}"
        case "total":
            return f"医疗费用总额 {a} 元"
        case "inscp":
            return f"政策范围内费用 {a} 元（政策范围外自付 {yuan(f['selfpay_out_fen'])} 元）"
        case "deductible":
            text = f"起付线：{f['level']}级医院每次 {yuan(f['per_stay_fen'])} 元"
            if "year_left_fen" in f:
                text += f"，年度起付线累计上限剩余 {yuan(f['year_left_fen'])} 元"
            return text + f"，本次计 {a} 元"
        case "eligible":
            return f"进入统筹支付的费用 {a} 元（年度累计区间 {yuan(f['from_fen'])}–{yuan(f['to_fen'])} 元）"
        case "basic_band":
            return (f"统筹基金第{int(f['band']) + 1}段（{yuan(f['from_fen'])}–{yuan(f['to_fen'])} 元）按 "
                    f"{percent(f['ratio_bp'])} 支付 {a} 元（基础 {percent(f['base_bp'])}，退休 +{percent(f['retired_bp'])}，"
                    f"困难 +{percent(f['poverty_bp'])}，备案 -{percent(f['cut_bp'])}）")
        case "basic_cap":
            return f"统筹基金年度限额 {yuan(f['annual_cap_fen'])} 元，剩余 {yuan(f['left_fen'])} 元，封顶后支付 {a} 元"
        case "hifp":
            return f"统筹基金支付 {a} 元"
        case "burden":
            return f"政策范围内个人负担 {a} 元"
        case "critical_threshold":
            return (f"大病保险起付线 {yuan(f['threshold_fen'])} 元，累计个人负担 {yuan(f['to_fen'])} 元，"
                    f"超出部分 {a} 元")
        case "critical_band":
            return (f"大病保险第{int(f['band']) + 1}段（起付线以上 {yuan(f['from_fen'])}–{yuan(f['to_fen'])} 元）"
                    f"按 {percent(f['ratio_bp'])} 支付 {a} 元")
        case "critical_cap":
            return f"大病保险年度限额 {yuan(f['annual_cap_fen'])} 元，剩余 {yuan(f['left_fen'])} 元，封顶后支付 {a} 元"
        case "hifmi":
            return f"大病保险支付 {a} 元"
        case "assist_base":
            return f"医疗救助计算基数 {a} 元"
        case "assistance":
            return (f"医疗救助（{f['tier']}）：年度起付 {yuan(f['deductible_fen'])} 元以上 {yuan(f['above_fen'])} 元"
                    f"按 {percent(f['ratio_bp'])} 支付 {a} 元")
        case "assistance_none":
            return f"医疗救助（{f['tier']}）：参保地政策未设医疗救助，支付 {a} 元"
        case "assistance_cap":
            return f"医疗救助年度限额 {yuan(f['annual_cap_fen'])} 元，剩余 {yuan(f['left_fen'])} 元，封顶后支付 {a} 元"
        case "maf":
            return f"医疗救助支付 {a} 元"
        case "fund_pay":
            return f"基金支付合计 {a} 元"
        case "psn_pay":
            return f"个人支付 {a} 元"
    special = render_special_zh(step)
    if special is not None:
        return special
    raise AssertionError(f"no Chinese text for step {step.key}")


def render_en(step: Step) -> str:
    f = step.facts
    a = yuan(step.amount_fen)
    match step.key:
        case "line_excluded":
            return f"line {f['line_id']} {f['code']}: {a} fully self-paid ({REASONS_EN[str(f['reason'])]})"
        case "line_over_cap":
            return (f"line {f['line_id']} {f['code']}: unit price {yuan(f['unit_price_fen'])} above the cap "
                    f"{yuan(f['price_cap_fen'])}; {a} self-paid over the cap")
        case "line_preselfpay":
            return f"line {f['line_id']} {f['code']}: grade B, {percent(f['selfpay_bp'])} self-paid first = {a}"
        case "line_note":
            return f"line {f['line_id']}: classified by the insured region's catalogue, {f['note']}"
        case "total":
            return f"total bill {a}"
        case "inscp":
            return f"in policy scope {a} (outside the scope, self-paid: {yuan(f['selfpay_out_fen'])})"
        case "deductible":
            text = f"deductible: {yuan(f['per_stay_fen'])} per stay at a level-{f['level']} hospital"
            if "year_left_fen" in f:
                text += f", {yuan(f['year_left_fen'])} left under the annual deductible cap"
            return text + f"; this stay {a}"
        case "eligible":
            return f"eligible for the basic fund {a} (year-to-date {yuan(f['from_fen'])}–{yuan(f['to_fen'])})"
        case "basic_band":
            return (f"basic fund band {int(f['band']) + 1} ({yuan(f['from_fen'])}–{yuan(f['to_fen'])}) at "
                    f"{percent(f['ratio_bp'])} pays {a} (base {percent(f['base_bp'])}, retired +{percent(f['retired_bp'])}, "
                    f"poverty +{percent(f['poverty_bp'])}, filing -{percent(f['cut_bp'])})")
        case "basic_cap":
            return f"basic fund annual cap {yuan(f['annual_cap_fen'])}, {yuan(f['left_fen'])} left: pays {a}"
        case "hifp":
            return f"basic fund (hifp) pays {a}"
        case "burden":
            return f"in-scope personal burden {a}"
        case "critical_threshold":
            return (f"critical-illness threshold {yuan(f['threshold_fen'])}, year-to-date burden "
                    f"{yuan(f['to_fen'])}: {a} above it")
        case "critical_band":
            return (f"critical-illness band {int(f['band']) + 1} ({yuan(f['from_fen'])}–{yuan(f['to_fen'])} above "
                    f"the threshold) at {percent(f['ratio_bp'])} pays {a}")
        case "critical_cap":
            return f"critical-illness annual cap {yuan(f['annual_cap_fen'])}, {yuan(f['left_fen'])} left: pays {a}"
        case "hifmi":
            return f"critical-illness insurance (hifmi) pays {a}"
        case "assist_base":
            return f"medical-assistance base {a}"
        case "assistance":
            return (f"medical assistance ({f['tier']}): {yuan(f['above_fen'])} above the annual threshold "
                    f"{yuan(f['deductible_fen'])} at {percent(f['ratio_bp'])} pays {a}")
        case "assistance_none":
            return f"medical assistance ({f['tier']}): the insured region's policy has no medical assistance, pays {a}"
        case "assistance_cap":
            return f"medical-assistance annual cap {yuan(f['annual_cap_fen'])}, {yuan(f['left_fen'])} left: pays {a}"
        case "maf":
            return f"medical assistance (maf) pays {a}"
        case "fund_pay":
            return f"funds pay {a} in all"
        case "psn_pay":
            return f"the patient pays {a}"
    special = render_special_en(step)
    if special is not None:
        return special
    raise AssertionError(f"no English text for step {step.key}")


def render(steps: tuple[Step, ...], language: str) -> list[str]:
    """Render every step as one sentence in `language` ("zh" or "en")."""
    renderer = {"zh": render_zh, "en": render_en}[language]
    return [renderer(step) for step in steps]
