"""Adjudication of one outpatient special-disease visit by the insured region's policy — SPEC §13.2.

Deterministic like the inpatient `clearing.adjudicate.adjudicate`: the classified lines, the visit, the member,
their recognitions, the policy in force and both sets of accumulators in; the split, the accumulators after and
the explanation out. The offline quote and (later) the online settlement call the same function.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from clearing.adjudicate import line_sums_and_steps
from clearing.classify import LineClass
from clearing.errors import InvalidField, PreconditionFailed
from clearing.explain import Step, new_step
from clearing.member import Member, Ytd, new_ytd
from clearing.money import BP_WHOLE, apply_bp
from clearing.outpatient.member import Recognition, SpecialYtd, month_of
from clearing.policy import Disease, Policy, Scheme, SchemePolicy, SpecialDiseasePolicy


@dataclass(frozen=True, slots=True)
class VisitFacts:
    """What the insured side needs of a visit besides its lines."""

    treating_region: str
    hospital_level: int
    visit_on: date
    disease: Disease


@dataclass(frozen=True, slots=True)
class VisitAdjudication:
    """The fund split of one visit (the SPEC §5.3 money keys) with both sets of accumulators before and after.
    `limit_left_fen` is what the disease's annual or monthly limit leaves after this visit (None: no limit)."""

    disease: Disease
    lines: tuple[LineClass, ...]
    total_fen: int
    fulamt_ownpay_fen: int
    overlmt_selfpay_fen: int
    preselfpay_fen: int
    inscp_fen: int
    deductible_fen: int
    eligible_fen: int
    ratio_bp: int
    hifp_fen: int
    hifmi_fen: int
    maf_fen: int
    fund_pay_fen: int
    psn_pay_fen: int
    limit_left_fen: int | None
    ytd_before: Ytd
    ytd_after: Ytd
    special_before: SpecialYtd
    special_after: SpecialYtd
    explanation: tuple[Step, ...]


def check_visit_applicable(
    member: Member, recognitions: tuple[Recognition, ...], visit: VisitFacts, policy: Policy,
) -> tuple[SchemePolicy, SpecialDiseasePolicy, Recognition]:
    """The errors that are not quotes (SPEC §13.1, §13.2 step 1, §13.4), in that order: the member's region is not
    the policy's, the visit is before the policy, a scheme the policy lacks, no section for the disease, no
    recognition of it valid on the day."""
    if member.region != policy.region:
        raise InvalidField("member.region", f"{member.region} is not the policy's region {policy.region}")
    if visit.visit_on < policy.effective_from:
        raise PreconditionFailed(
            "visit_on", f"{visit.visit_on} is before the policy's effective_from {policy.effective_from}")
    scheme = policy.schemes.get(member.scheme)
    if scheme is None:
        raise InvalidField("member.scheme", f"the {policy.region} policy has no {member.scheme.value} scheme")
    section = policy.outpatient_special.get(visit.disease)
    if section is None:
        raise PreconditionFailed(f"outpatient_special.{visit.disease.value}",
                                 f"the {policy.region} policy does not cover {visit.disease.value} outpatient visits")
    recognition = next((item for item in recognitions
                        if item.disease is visit.disease and item.covers(visit.visit_on)), None)
    if recognition is None:
        raise PreconditionFailed("member.special_diseases",
                                 f"no recognition of {visit.disease.value} valid on {visit.visit_on}")
    return scheme, section, recognition


def visit_ratio(member: Member, visit: VisitFacts, policy: Policy, scheme: SchemePolicy,
                section: SpecialDiseasePolicy) -> tuple[int, Step]:
    """Step 4's ratio: the level's ratio, plus the retired bonus for a retired employee, less the filing cut as the
    member's filing stands (no emergency rule, no poverty bonus, §13.4), clamped once to 0–10000."""
    base_bp = section.ratio_bp[visit.hospital_level]
    retired_bp = scheme.retired_bonus_bp if member.retired and member.scheme is Scheme.EMPLOYEE else 0
    # As for a stay (§5.2 step 3), a visit in the member's own region takes no cut.
    same_region = visit.treating_region == member.region
    cut_bp = 0 if same_region or policy.filing_cut_bp is None else policy.filing_cut_bp[member.filing]
    ratio_bp = min(BP_WHOLE, max(0, base_bp + retired_bp - cut_bp))
    return ratio_bp, new_step("special_ratio", 0, {
        "level": visit.hospital_level, "ratio_bp": ratio_bp, "base_bp": base_bp, "retired_bp": retired_bp,
        "cut_bp": cut_bp})


def disease_limit(pay_fen: int, visit: VisitFacts, section: SpecialDiseasePolicy,
                  before: SpecialYtd) -> tuple[int, int | None, Step]:
    """Step 5: the annual limit on the year's pay, or the monthly 定额 on this month's; 0 = no limit. Returns the pay,
    what the limit left before the visit (None: no limit) and the step."""
    disease = visit.disease.value
    if section.annual_limit_fen is not None:
        limit_fen, used_fen, facts = section.annual_limit_fen, before.paid_fen, {"disease": disease}
        key = "special_annual_limit"
    else:
        assert section.monthly_limit_fen is not None
        month = month_of(visit.visit_on)
        limit_fen, used_fen = section.monthly_limit_fen, before.paid_in(month)
        facts, key = {"disease": disease, "month": month}, "special_monthly_limit"
    if limit_fen == 0:
        kind = "annual" if section.annual_limit_fen is not None else "monthly"
        return pay_fen, None, new_step("special_no_limit", pay_fen, {"disease": disease, "kind": kind})
    left_fen = max(0, limit_fen - used_fen)
    paid_fen = min(pay_fen, left_fen)
    return paid_fen, left_fen, new_step(key, paid_fen, {
        **facts, "limit_fen": limit_fen, "used_fen": used_fen, "left_fen": left_fen})


def shared_inpatient_cap(pay_fen: int, scheme: SchemePolicy, ytd: Ytd) -> tuple[int, Step]:
    """Step 6: with `shares_inpatient_cap`, the scheme's annual cap (0 = none) on what the year's hifp leaves."""
    if scheme.annual_cap_fen == 0:
        return pay_fen, new_step("special_inpatient_cap", pay_fen, {"annual_cap_fen": 0, "used_fen": ytd.hifp_fen})
    left_fen = max(0, scheme.annual_cap_fen - ytd.hifp_fen)
    paid_fen = min(pay_fen, left_fen)
    return paid_fen, new_step("special_inpatient_cap", paid_fen, {
        "annual_cap_fen": scheme.annual_cap_fen, "used_fen": ytd.hifp_fen, "left_fen": left_fen})


def adjudicate_visit(
    lines: tuple[LineClass, ...], visit: VisitFacts, member: Member, recognitions: tuple[Recognition, ...],
    policy: Policy, ytd: Ytd, special: dict[Disease, SpecialYtd],
) -> VisitAdjudication:
    """Split one visit's classified lines between the basic fund and the patient (SPEC §13.2 steps 1–7).
    `special` holds the member's per-disease accumulators; a disease without an entry starts from zeros."""
    assert lines, "a visit has at least one line"
    assert ytd.is_non_negative()
    scheme, section, recognition = check_visit_applicable(member, recognitions, visit, policy)
    before = special.get(visit.disease, SpecialYtd())
    assert min(before.deductible_fen, before.paid_fen, before.month_paid_fen) >= 0
    month = month_of(visit.visit_on)
    if before.month is not None and before.month > month:
        # §13.2 step 5 would read it as another month (0 paid) and §13.4 would move `month` back: the later
        # month's 定额 would then start afresh. Refused instead: visits are adjudicated in day order.
        raise InvalidField(f"member.ytd_special.{visit.disease.value}.month",
                           f"{before.month} is after the visit's month {month}")
    steps = [new_step("special_disease", 0, {
        "disease": visit.disease.value, "valid_from": recognition.valid_from.isoformat(),
        "valid_to": recognition.valid_to.isoformat() if recognition.valid_to else "", "visit_on": visit.visit_on.isoformat()})]
    total_fen, fulamt_fen, overlmt_fen, preselfpay_fen, inscp_fen, line_steps = line_sums_and_steps(lines)
    assert inscp_fen + fulamt_fen + overlmt_fen + preselfpay_fen == total_fen
    steps += line_steps
    steps += [new_step("total", total_fen, {}),
              new_step("inscp", inscp_fen, {"selfpay_out_fen": fulamt_fen + overlmt_fen + preselfpay_fen})]

    # Step 3: the disease's deductible is per policy year (起付线), what the year has not yet deducted.
    year_left_fen = max(0, section.deductible_fen - before.deductible_fen)
    deductible_fen = min(inscp_fen, year_left_fen)
    eligible_fen = inscp_fen - deductible_fen
    steps.append(new_step("special_deductible", deductible_fen, {
        "disease": visit.disease.value, "deductible_fen": section.deductible_fen, "year_left_fen": year_left_fen}))
    ratio_bp, ratio_step = visit_ratio(member, visit, policy, scheme, section)
    pay_fen = apply_bp(eligible_fen, ratio_bp)
    steps.append(new_step(ratio_step.key, pay_fen, {**ratio_step.facts, "eligible_fen": eligible_fen}))
    pay_fen, limit_left_before_fen, limit_step = disease_limit(pay_fen, visit, section, before)
    steps.append(limit_step)
    ytd_delta = new_ytd(0, 0, 0, 0, 0, 0, 0, 0)
    if section.shares_inpatient_cap:
        pay_fen, cap_step = shared_inpatient_cap(pay_fen, scheme, ytd)
        steps.append(cap_step)
        ytd_delta = new_ytd(0, 0, pay_fen, 0, 0, 0, 0, 0)  # the visit's pay counts toward the inpatient cap
    limit_left_fen = None if limit_left_before_fen is None else limit_left_before_fen - pay_fen
    if limit_left_fen is not None:
        steps.append(new_step("special_limit_left", limit_left_fen, {
            "disease": visit.disease.value, **({"month": limit_step.facts["month"]}
                                               if "month" in limit_step.facts else {})}))

    hifp_fen = fund_pay_fen = pay_fen  # step 7: no 大病 or 救助 on a visit in this version
    psn_pay_fen = total_fen - fund_pay_fen
    steps += [new_step("hifp", hifp_fen, {}), new_step("fund_pay", fund_pay_fen, {}),
              new_step("psn_pay", psn_pay_fen, {})]

    after = SpecialYtd(before.deductible_fen + deductible_fen, before.paid_fen + pay_fen, month,
                       before.paid_in(month) + pay_fen)
    assert 0 <= deductible_fen <= inscp_fen and 0 <= pay_fen <= eligible_fen
    assert limit_left_fen is None or limit_left_fen >= 0
    assert fund_pay_fen + psn_pay_fen == total_fen and psn_pay_fen >= 0
    return VisitAdjudication(
        disease=visit.disease, lines=lines, total_fen=total_fen, fulamt_ownpay_fen=fulamt_fen,
        overlmt_selfpay_fen=overlmt_fen, preselfpay_fen=preselfpay_fen, inscp_fen=inscp_fen,
        deductible_fen=deductible_fen, eligible_fen=eligible_fen, ratio_bp=ratio_bp, hifp_fen=hifp_fen,
        hifmi_fen=0, maf_fen=0, fund_pay_fen=fund_pay_fen, psn_pay_fen=psn_pay_fen, limit_left_fen=limit_left_fen,
        ytd_before=ytd, ytd_after=ytd.plus(ytd_delta), special_before=before, special_after=after,
        explanation=tuple(steps),
    )
