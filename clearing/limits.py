"""Every bound the system enforces, in one place (STYLE: bound everything).

A request beyond a bound is an operating error (`InvalidField`), never a crash.
"""

LINES_PER_BILL_MAX = 2_000
# One UploadCharges carries at most this many lines (checked before any is converted or stored); a bill may grow
# over several uploads up to LINES_PER_BILL_MAX. The demo's bills have at most 60 (services/datagen/bills.py).
LINES_PER_UPLOAD_MAX = 1_000
DIAGNOSES_PER_STAY_MAX = 32
PROCEDURES_PER_STAY_MAX = 32  # 病案首页 lists up to 7 operations; grouper input allows more
STAY_DAYS_MAX = 366
BANDS_MAX = 16
ICD_PREFIXES_PER_DISEASE_MAX = 128  # [outpatient_special.<disease>] icd: cancer lists every C category (91)
# A member's recognised outpatient special diseases (门诊慢特病认定) in one file: five diseases, renewed over years.
RECOGNITIONS_PER_MEMBER_MAX = 100
CATALOGUE_ROWS_MAX = 500_000
CODE_LENGTH_MAX = 64
LINE_ID_LENGTH_MAX = 64
UNIT_PRICE_FEN_MAX = 1_000_000_000  # 10 million yuan per unit: far beyond any real price
QTY_E4_MAX = 100_000 * 10_000  # 100,000 units of anything on one line
BILL_TOTAL_FEN_MAX = 1_000_000_000_00  # 1 billion yuan
PREPAYMENT_FEN_MAX = 10**15  # 10 trillion yuan per deposit or required amount: years of national outflow
TX_RETRIES_MAX = 5
PAGE_SIZE_MAX = 1_000

# The product of the largest line stays far inside int64 so no intermediate overflows a bigint column.
assert UNIT_PRICE_FEN_MAX * QTY_E4_MAX < 2**63
assert LINES_PER_BILL_MAX * UNIT_PRICE_FEN_MAX * (QTY_E4_MAX // 10_000) >= BILL_TOTAL_FEN_MAX
assert BILL_TOTAL_FEN_MAX * 10_000 < 2**63  # apply_bp on any total stays in int64
assert PREPAYMENT_FEN_MAX * 1_000 < 2**63  # a thousand maximal deposits still fit a bigint balance
