"""The national ICD-10 prefixes of the five outpatient special diseases (SPEC §13): what judges a visit's `icd:`
restrictions online.

The treating agency classifies a visit's lines (就医地目录、就医地管理) before any insured region is asked, and the
clearing house checks that classification again: both need the disease's prefixes without the insured region's
policy. Every demo policy's `[outpatient_special.<disease>].icd` is this list (tests/unit/outpatient/test_icd.py),
so the offline quote, which reads the policy's list, and the online settlement classify alike.
docs/outpatient-special.md says what a region with another list would mean.
"""

from __future__ import annotations

from clearing.policy import Disease

NATIONAL_ICD: dict[Disease, tuple[str, ...]] = {
    Disease.HYPERTENSION: (
        "I10", "I11", "I12", "I13", "I15",
    ),
    Disease.DIABETES: (
        "E10", "E11", "E12", "E13", "E14",
    ),
    Disease.CANCER_THERAPY: (
        "C00", "C01", "C02", "C03", "C04", "C05", "C06", "C07", "C08", "C09", "C10", "C11", "C12", "C13", "C14",
        "C15", "C16", "C17", "C18", "C19", "C20", "C21", "C22", "C23", "C24", "C25", "C26", "C30", "C31", "C32",
        "C33", "C34", "C37", "C38", "C39", "C40", "C41", "C43", "C44", "C45", "C46", "C47", "C48", "C49", "C50",
        "C51", "C52", "C53", "C54", "C55", "C56", "C57", "C58", "C60", "C61", "C62", "C63", "C64", "C65", "C66",
        "C67", "C68", "C69", "C70", "C71", "C72", "C73", "C74", "C75", "C76", "C77", "C78", "C79", "C80", "C81",
        "C82", "C83", "C84", "C85", "C86", "C88", "C90", "C91", "C92", "C93", "C94", "C95", "C96",
        "C97", "Z510", "Z511",
    ),
    Disease.DIALYSIS: (
        "N180", "N185", "N19", "Z49", "Z992",
    ),
    Disease.TRANSPLANT: (
        "Z94", "T86",
    ),
}


def national_icd(disease: Disease) -> tuple[str, ...]:
    """The disease's ICD-10 prefixes, upper case without dots, as a policy section keeps them."""
    return NATIONAL_ICD[disease]
