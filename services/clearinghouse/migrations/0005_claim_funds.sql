-- The fund split and stay dates on each claim, for statements (SPEC §7).
ALTER TABLE claims ADD COLUMN hifp_fen bigint, ADD COLUMN hifmi_fen bigint, ADD COLUMN maf_fen bigint,
    ADD COLUMN admitted_on date, ADD COLUMN discharged_on date;
CREATE INDEX ledger_transactions_month ON ledger_transactions (clearing_month);
