"""Adjudication of one inpatient stay by the insured region's policy (参保地政策) — SPEC §5.2.

`adjudicate` is deterministic: classified lines, the stay, the member, the policy in force and
the year-to-date accumulators in; the fund split, the accumulators after and the explanation
out. The same function serves the offline quote and the online settlement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from clearing.classify import LineClass
from clearing.errors import InvalidField, PreconditionFailed
from clearing.explain import Step, new_step
from clearing.member import Member, Ytd, new_ytd
from clearing.money import BP_WHOLE, apply_bp
from clearing.policy import FilingStatus, Policy, SchemePolicy
from clearing.values import compile_constructor


@dataclass(frozen=True, slots=True)
class StayFacts:
    """What the insured side needs of the stay besides its lines."""

    treating_region: str
    hospital_level: int
    admitted_on: date
    discharged_on: date
    emergency: bool


@dataclass(frozen=True, slots=True)
class AxisPart:
    """The part `[from_fen, to_fen)` of a stay's amount that falls in segment `band` of a year axis."""

    band: int
    from_fen: int
    to_fen: int
    ratio_bp: int
    paid_fen: int


@dataclass(frozen=True, slots=True)
class Adjudication:
    """The fund split of one stay (SPEC §5.3 output keys) with the accumulators before and after."""

    lines: tuple[LineClass, ...]
    total_fen: int
    fulamt_ownpay_fen: int
    overlmt_selfpay_fen: int
    preselfpay_fen: int
    inscp_fen: int
    deductible_fen: int
    eligible_fen: int
    hifp_fen: int
    burden_fen: int
    hifmi_fen: int
    assist_base_fen: int
    maf_fen: int
    fund_pay_fen: int
    psn_pay_fen: int
    ytd_before: Ytd
    ytd_after: Ytd
    explanation: tuple[Step, ...]

    @property
    def ytd_delta(self) -> Ytd:
        return self.ytd_after.minus(self.ytd_before)


# Built once or twice a stay, the adjudication once: without the dataclass __init__ (clearing/values.py).
new_axis_part = compile_constructor(AxisPart)
new_adjudication = compile_constructor(Adjudication)


def split_on_axis(start_fen: int, length_fen: int, segments: tuple[tuple[int | None, int], ...]) -> tuple[AxisPart, ...]:
    """Lay `[start, start + length)` over consecutive segments `(upto_fen or None, ratio_bp)` starting at 0
    and pay each overlap at its ratio, `apply_bp` per part (分段累进)."""
    assert start_fen >= 0 and length_fen >= 0
    parts: list[AxisPart] = []
    end_fen = start_fen + length_fen
    lower_fen = 0
    for band, (upto_fen, ratio_bp) in enumerate(segments):
        upper_fen = end_fen if upto_fen is None else upto_fen
        low, high = max(start_fen, lower_fen), min(end_fen, upper_fen)
        if high > low:
            parts.append(new_axis_part(band, low, high, ratio_bp, apply_bp(high - low, ratio_bp)))
        if upto_fen is None:
            break
        lower_fen = upto_fen
    assert sum(part.to_fen - part.from_fen for part in parts) == length_fen, "the last segment is open"
    return tuple(parts)


def capped(amount_fen: int, annual_cap_fen: int, used_fen: int) -> tuple[int, int | None]:
    """Apply an annual cap (0 = none) given what the year already used; returns (paid, left or None)."""
    if annual_cap_fen == 0:
        return amount_fen, None
    left_fen = max(0, annual_cap_fen - used_fen)
    return min(amount_fen, left_fen), left_fen


def check_applicable(member: Member, stay: StayFacts, policy: Policy) -> SchemePolicy:
    """The errors that are not quotes (SPEC §5.2): wrong region, date before the policy, a scheme the policy
    lacks, a tier its [assistance] section leaves out."""
    if member.region != policy.region:
        raise InvalidField("member.region", f"{member.region} is not the policy's region {policy.region}")
    if stay.discharged_on < policy.effective_from:
        raise PreconditionFailed(
            "discharged_on", f"{stay.discharged_on} is before the policy's effective_from {policy.effective_from}")
    scheme = policy.schemes.get(member.scheme)
    if scheme is None:
        raise InvalidField("member.scheme", f"the {policy.region} policy has no {member.scheme.value} scheme")
    # No [assistance] section means no assistance (SPEC §5.1): a tier is then simply not paid (step 6).
    # A section that exists but leaves the member's tier out is an error (SPEC §5.2 step 6).
    if member.assistance is not None and policy.assistance is not None and member.assistance not in policy.assistance:
        raise InvalidField("member.assistance",
                           f"the {policy.region} policy does not define assistance tier {member.assistance.value}")
    return scheme


def filing_cut_bp(member: Member, stay: StayFacts, policy: Policy) -> int:
    """Ratio cut for treatment outside the insured region; an unfiled emergency takes the temporary cut."""
    if stay.treating_region == member.region or policy.filing_cut_bp is None:
        return 0
    status = member.filing
    if status is FilingStatus.UNFILED and stay.emergency:
        status = FilingStatus.TEMPORARY
    return policy.filing_cut_bp[status]


def line_sums_and_steps(lines: tuple[LineClass, ...]) -> tuple[int, int, int, int, int, list[Step]]:
    """Step 1 in one pass over the lines: the stay's total, 全自费, 超限价, 先行自付 and 政策范围内 sums, and a step
    for every part of a line that is not in scope (most lines of a stay have none: they only add to two sums)."""
    total_fen = fulamt_fen = overlmt_fen = preselfpay_fen = inscp_fen = 0
    steps: list[Step] = []
    for item in lines:
        line = item.line
        total_fen += line.amount_fen
        inscp_fen += item.inscp_fen
        line_fulamt_fen, line_overlmt_fen, line_preselfpay_fen = (
            item.fulamt_ownpay_fen, item.overlmt_selfpay_fen, item.preselfpay_fen)
        if not (line_fulamt_fen or line_overlmt_fen or line_preselfpay_fen or item.note):
            continue  # wholly in scope: nothing to explain
        if item.note:
            steps.append(new_step("line_note", 0, {"line_id": line.line_id, "code": line.code, "note": item.note}))
        if line_fulamt_fen:
            fulamt_fen += line_fulamt_fen
            steps.append(new_step("line_excluded", line_fulamt_fen, {
                "line_id": line.line_id, "code": line.code, "reason": str(item.reason)}))
        if line_overlmt_fen:
            assert item.price_cap_fen is not None
            overlmt_fen += line_overlmt_fen
            steps.append(new_step("line_over_cap", line_overlmt_fen, {
                "line_id": line.line_id, "code": line.code, "unit_price_fen": line.unit_price_fen,
                "price_cap_fen": item.price_cap_fen}))
        if line_preselfpay_fen:
            preselfpay_fen += line_preselfpay_fen
            steps.append(new_step("line_preselfpay", line_preselfpay_fen, {
                "line_id": line.line_id, "code": line.code, "selfpay_bp": item.selfpay_bp}))
    return total_fen, fulamt_fen, overlmt_fen, preselfpay_fen, inscp_fen, steps


def basic_fund(
    eligible_fen: int, member: Member, stay: StayFacts, policy: Policy, scheme: SchemePolicy, ytd: Ytd,
) -> tuple[int, list[Step]]:
    """Steps 3–4: the band ratios (clamped once after every adjustment) and the capped basic fund `hifp`."""
    retired_bp = scheme.retired_bonus_bp if member.retired else 0
    poverty_bp = policy.poverty.ratio_bonus_bp if member.poverty and policy.poverty else 0
    cut_bp = filing_cut_bp(member, stay, policy)
    segments = []
    for band in scheme.bands:
        ratio_bp = band.ratio_bp[stay.hospital_level] + retired_bp + poverty_bp - cut_bp
        segments.append((band.upto_fen, min(BP_WHOLE, max(0, ratio_bp))))
    parts = split_on_axis(ytd.eligible_fen, eligible_fen, tuple(segments))
    steps = [
        new_step("basic_band", part.paid_fen, {
            "band": part.band, "from_fen": part.from_fen, "to_fen": part.to_fen, "ratio_bp": part.ratio_bp,
            "base_bp": scheme.bands[part.band].ratio_bp[stay.hospital_level], "retired_bp": retired_bp,
            "poverty_bp": poverty_bp, "cut_bp": cut_bp})
        for part in parts
    ]
    uncapped_fen = sum(part.paid_fen for part in parts)
    hifp_fen, left_fen = capped(uncapped_fen, scheme.annual_cap_fen, ytd.hifp_fen)
    if left_fen is not None and hifp_fen < uncapped_fen:
        steps.append(new_step("basic_cap", hifp_fen, {"annual_cap_fen": scheme.annual_cap_fen, "left_fen": left_fen}))
    steps.append(new_step("hifp", hifp_fen, {}))
    return hifp_fen, steps


def critical_insurance(
    burden_fen: int, member: Member, policy: Policy, scheme: SchemePolicy, ytd: Ytd,
) -> tuple[int, list[Step]]:
    """Step 5: 大病保险 on the part of the year's burden above the threshold, bands measured from it."""
    steps = [new_step("burden", burden_fen, {})]
    critical = scheme.critical
    if critical is None:
        steps.append(new_step("hifmi", 0, {}))
        return 0, steps
    threshold_fen = critical.threshold_fen
    if member.poverty and policy.poverty:
        threshold_fen = apply_bp(threshold_fen, policy.poverty.critical_threshold_bp)
    burden_to_fen = ytd.burden_fen + burden_fen
    above_from_fen = max(ytd.burden_fen, threshold_fen) - threshold_fen
    above_to_fen = max(burden_to_fen, threshold_fen) - threshold_fen
    steps.append(new_step("critical_threshold", above_to_fen - above_from_fen,
                          {"threshold_fen": threshold_fen, "to_fen": burden_to_fen}))
    segments = tuple((band.upto_fen, band.ratio_bp) for band in critical.bands)
    parts = split_on_axis(above_from_fen, above_to_fen - above_from_fen, segments)
    steps += [
        new_step("critical_band", part.paid_fen,
                 {"band": part.band, "from_fen": part.from_fen, "to_fen": part.to_fen, "ratio_bp": part.ratio_bp})
        for part in parts
    ]
    uncapped_fen = sum(part.paid_fen for part in parts)
    hifmi_fen, left_fen = capped(uncapped_fen, critical.annual_cap_fen, ytd.hifmi_fen)
    if left_fen is not None and hifmi_fen < uncapped_fen:
        steps.append(new_step("critical_cap", hifmi_fen,
                              {"annual_cap_fen": critical.annual_cap_fen, "left_fen": left_fen}))
    steps.append(new_step("hifmi", hifmi_fen, {}))
    return hifmi_fen, steps


def medical_assistance(base_fen: int, member: Member, policy: Policy, ytd: Ytd) -> tuple[int, list[Step]]:
    """Step 6: 医疗救助 for members with a tier, above the tier's annual threshold on its own axis."""
    steps = [new_step("assist_base", base_fen, {})]
    if member.assistance is None:
        steps.append(new_step("maf", 0, {}))
        return 0, steps
    if policy.assistance is None:  # the policy has no medical assistance at all (SPEC §5.1)
        steps.append(new_step("assistance_none", 0, {"tier": member.assistance.value}))
        steps.append(new_step("maf", 0, {}))
        return 0, steps
    rule = policy.assistance[member.assistance]  # check_applicable refused a tier the section leaves out
    base_to_fen = ytd.assist_base_fen + base_fen
    above_fen = max(base_to_fen, rule.deductible_fen) - max(ytd.assist_base_fen, rule.deductible_fen)
    uncapped_fen = apply_bp(above_fen, rule.ratio_bp)
    steps.append(new_step("assistance", uncapped_fen, {
        "tier": member.assistance.value, "deductible_fen": rule.deductible_fen, "above_fen": above_fen,
        "ratio_bp": rule.ratio_bp}))
    maf_fen, left_fen = capped(uncapped_fen, rule.annual_cap_fen, ytd.maf_fen)
    if left_fen is not None and maf_fen < uncapped_fen:
        steps.append(new_step("assistance_cap", maf_fen, {"annual_cap_fen": rule.annual_cap_fen, "left_fen": left_fen}))
    steps.append(new_step("maf", maf_fen, {}))
    return maf_fen, steps


def deductible(inscp_fen: int, stay: StayFacts, scheme: SchemePolicy, ytd: Ytd) -> tuple[int, Step]:
    """Step 2: the stay's deductible (起付线), limited by what the annual deductible cap leaves."""
    per_stay_fen = scheme.deductible_fen[stay.hospital_level]
    paid_fen = min(inscp_fen, per_stay_fen)
    facts: dict[str, int | str] = {"level": stay.hospital_level, "per_stay_fen": per_stay_fen}
    if scheme.annual_deductible_cap_fen:
        year_left_fen = max(0, scheme.annual_deductible_cap_fen - ytd.deductible_fen)
        paid_fen = min(paid_fen, year_left_fen)
        facts["year_left_fen"] = year_left_fen
    assert 0 <= paid_fen <= inscp_fen
    return paid_fen, new_step("deductible", paid_fen, facts)


def adjudicate(
    lines: tuple[LineClass, ...], stay: StayFacts, member: Member, policy: Policy, ytd: Ytd,
) -> Adjudication:
    """Split one stay's classified lines between the funds and the patient (SPEC §5.2 steps 1–8)."""
    assert lines, "a bill has at least one line"
    assert ytd.is_non_negative()
    scheme = check_applicable(member, stay, policy)
    total_fen, fulamt_fen, overlmt_fen, preselfpay_fen, inscp_fen, steps = line_sums_and_steps(lines)
    assert inscp_fen + fulamt_fen + overlmt_fen + preselfpay_fen == total_fen
    steps.append(new_step("total", total_fen, {}))
    steps.append(new_step("inscp", inscp_fen, {"selfpay_out_fen": fulamt_fen + overlmt_fen + preselfpay_fen}))

    deductible_fen, deductible_step = deductible(inscp_fen, stay, scheme, ytd)
    eligible_fen = inscp_fen - deductible_fen
    steps += [deductible_step, new_step("eligible", eligible_fen,
                                        {"from_fen": ytd.eligible_fen, "to_fen": ytd.eligible_fen + eligible_fen})]
    hifp_fen, basic_steps = basic_fund(eligible_fen, member, stay, policy, scheme, ytd)
    burden_fen = inscp_fen - hifp_fen
    hifmi_fen, critical_steps = critical_insurance(burden_fen, member, policy, scheme, ytd)
    assist_base_fen = inscp_fen - hifp_fen - hifmi_fen
    maf_fen, assistance_steps = medical_assistance(assist_base_fen, member, policy, ytd)
    fund_pay_fen = hifp_fen + hifmi_fen + maf_fen
    psn_pay_fen = total_fen - fund_pay_fen
    steps += basic_steps + critical_steps + assistance_steps
    steps += [new_step("fund_pay", fund_pay_fen, {}), new_step("psn_pay", psn_pay_fen, {})]

    for part_fen in (deductible_fen, eligible_fen, hifp_fen, burden_fen, hifmi_fen, assist_base_fen, maf_fen):
        assert part_fen >= 0
    assert hifp_fen <= eligible_fen and hifmi_fen <= burden_fen and maf_fen <= assist_base_fen
    assert fund_pay_fen + psn_pay_fen == total_fen
    assert 0 <= fund_pay_fen <= inscp_fen and psn_pay_fen >= 0
    delta = new_ytd(deductible_fen, eligible_fen, hifp_fen, burden_fen, hifmi_fen, assist_base_fen, maf_fen, 1)
    return new_adjudication(
        lines=lines, total_fen=total_fen, fulamt_ownpay_fen=fulamt_fen, overlmt_selfpay_fen=overlmt_fen,
        preselfpay_fen=preselfpay_fen, inscp_fen=inscp_fen, deductible_fen=deductible_fen,
        eligible_fen=eligible_fen, hifp_fen=hifp_fen, burden_fen=burden_fen, hifmi_fen=hifmi_fen,
        assist_base_fen=assist_base_fen, maf_fen=maf_fen, fund_pay_fen=fund_pay_fen, psn_pay_fen=psn_pay_fen,
        ytd_before=ytd, ytd_after=ytd.plus(delta), explanation=tuple(steps),
    )

