"""Properties of the CHS-DRG 1.1 grouper (clearing/drg): on any valid case it never raises, is deterministic, and
does not depend on the order (or repeats) of the other diagnoses; its output always keeps the SPEC §14 shape."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.drg import UNGROUPABLE, CcLevel, DischargeStatus, DrgCase, Sex, case_from_dict, case_json, group, \
    result_json
from services.drg.reference import load_tables

DRG = settings(max_examples=300, derandomize=True, deadline=None, database=None)
TABLES = load_tables()
# Codes the tables know (sorted: derandomized runs draw the same ones), plus well-formed codes they do not.
DIAGNOSES = sorted(TABLES.diagnosis_codes)
PROCEDURES = sorted(TABLES.procedure_codes)
NEWBORN = sorted(next(mdc for mdc in TABLES.mdcs if mdc.mdc == "MDCP").diagnoses)
TRAUMA = sorted(next(mdc for mdc in TABLES.mdcs if mdc.mdc == "MDCZ").diagnoses)

diagnoses = st.one_of(st.sampled_from(DIAGNOSES), st.sampled_from(NEWBORN), st.sampled_from(TRAUMA),
                      st.from_regex(r"\A[A-Z][0-9]{2}\.[0-9]{3}\Z"))
procedures = st.one_of(st.sampled_from(PROCEDURES), st.from_regex(r"\A[0-9]{2}\.[0-9]{4}\Z"))


@st.composite
def cases(draw: st.DrawFn) -> DrgCase:
    age_years = draw(st.one_of(st.just(0), st.integers(0, 150)))
    return DrgCase(
        principal_diagnosis=draw(diagnoses),
        other_diagnoses=tuple(draw(st.lists(diagnoses, max_size=12))),
        procedures=tuple(draw(st.lists(procedures, max_size=6))),
        sex=draw(st.sampled_from(Sex)), age_years=age_years,
        age_days=draw(st.none() | st.integers(0, 365)) if age_years == 0 else None,
        birth_weight_g=draw(st.none() | st.integers(1, 9999)), los_days=draw(st.integers(0, 400)),
        discharge_status=draw(st.sampled_from(DischargeStatus)))


@DRG
@given(cases())
def test_grouping_never_raises_and_keeps_the_contract_shape(case: DrgCase) -> None:
    result = group(case, TABLES)
    data = result_json(result)
    assert set(data) == {"mdc", "adrg", "drg", "cc_level", "reason"}
    assert data["cc_level"] in {level.value for level in CcLevel}
    assert data["reason"]
    assert (result.ungroupable is None) == result.grouped
    if data["drg"] == UNGROUPABLE:
        assert data["mdc"] is None and data["adrg"] is None
    else:
        assert data["drg"] in TABLES.drg_names
        assert data["drg"][:3] == data["adrg"] and TABLES.adrgs[data["adrg"]].mdc == data["mdc"]


@DRG
@given(cases())
def test_grouping_is_deterministic(case: DrgCase) -> None:
    assert group(case, TABLES) == group(case, TABLES)


@DRG
@given(cases(), st.randoms(use_true_random=False))
def test_the_order_and_repeats_of_other_diagnoses_do_not_matter(case: DrgCase, rng) -> None:  # noqa: ANN001
    shuffled = list(case.other_diagnoses) * 2
    rng.shuffle(shuffled)
    other = DrgCase(**{**{name: getattr(case, name) for name in DrgCase.__slots__},
                       "other_diagnoses": tuple(shuffled[:31])})
    if set(other.other_diagnoses) == set(case.other_diagnoses):
        assert result_json(group(other, TABLES)) == result_json(group(case, TABLES))


@DRG
@given(cases())
def test_a_case_round_trips_through_its_json(case: DrgCase) -> None:
    assert case_from_dict(case_json(case)) == case


@DRG
@given(cases())
def test_an_extra_secondary_diagnosis_never_lowers_the_cc_level(case: DrgCase) -> None:
    # Adding a diagnosis can change the MDC (MDCZ regions, newborn bands), but the MCC/CC level is a maximum
    # over the secondaries, so it can only rise.
    rank = {CcLevel.NONE: 0, CcLevel.CC: 1, CcLevel.MCC: 2}
    more = DrgCase(**{**{name: getattr(case, name) for name in DrgCase.__slots__},
                      "other_diagnoses": (*case.other_diagnoses, "A41.900")})
    assert rank[group(more, TABLES).cc_level] >= rank[group(case, TABLES).cc_level]
