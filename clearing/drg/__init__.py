"""CHS-DRG 1.1 grouping (疾病诊断相关分组), pure: a validated case and the parsed tables in, a group out.

    tables = parse_tables(texts)          # texts: file name → CSV text (services/drg/reference.py reads them)
    result = group(case_from_dict(c), tables)
    result_json(result)                   # {"mdc", "adrg", "drg", "cc_level", "reason"} (SPEC §14)

docs/drg.md describes the rules and every simplification against the full CHS-DRG 1.1 standard.
"""

from clearing.drg.case import DischargeStatus, DrgCase, Sex, case_from_dict, case_json
from clearing.drg.grouper import (
    UNGROUPABLE, Complications, GroupResult, Ungroupable, group, result_json,
)
from clearing.drg.tables import TABLE_FILES, CcLevel, DrgTables, Split, parse_tables

__all__ = ["TABLE_FILES", "UNGROUPABLE", "CcLevel", "Complications", "DischargeStatus", "DrgCase", "DrgTables",
           "GroupResult", "Sex", "Split", "Ungroupable", "case_from_dict", "case_json", "group", "parse_tables",
           "result_json"]
