"""Outpatient chronic and special diseases across regions (门诊慢特病) — SPEC §13.

The policy sections are parsed with the rest of the policy (`clearing.policy.SpecialDiseasePolicy`); this package
holds the member's recognitions and per-disease accumulators (`member`), the visit bill (`visit`), the visit
algorithm of §13.2 (`adjudicate`) and the §13.3 quote shape (`quote`). It imports the money, catalogue and
inpatient modules, never the other way round.
"""
