"""The national ICD prefixes that judge a visit's `icd:` restrictions online (clearing/outpatient/icd.py) are every
demo policy's: the offline quote, which reads the policy's list, and the online settlement then classify alike."""

from __future__ import annotations

import pytest

from clearing.outpatient.icd import NATIONAL_ICD, national_icd
from clearing.policy import Disease
from services.common.regions import load_policy_book, load_regions


@pytest.mark.parametrize("region", sorted(load_regions()))
def test_every_demo_policy_lists_the_national_prefixes(region):
    for policy in load_policy_book(region).versions:
        for disease, section in policy.outpatient_special.items():
            assert section.icd_prefixes == national_icd(disease), (region, disease)


def test_every_disease_has_prefixes_in_the_policy_form():
    assert set(NATIONAL_ICD) == set(Disease)
    for prefixes in NATIONAL_ICD.values():
        assert prefixes and all(item == item.upper() and "." not in item for item in prefixes)
    assert "E11" in national_icd(Disease.DIABETES) and "C34" in national_icd(Disease.CANCER_THERAPY)
