-- A cancel (撤销) on its way to the insured agency (services/clearinghouse/servicer.py CancelClaim).
--
-- CancelClaim records the intent, committed, before it asks the insured agency to cancel, and drops it when the
-- cancel completes here (or when the insured agency definitely refused it, or reconciliation completes it:
-- finish_cancel). While an intent stands on a claim that is still settled here, the insured agency may have
-- cancelled already — the clearing house crashed before recording it — and the whole fund pay is about to be given
-- back by reconciliation: a dispute adjustment posted meanwhile would give its amount back a second time. So no
-- dispute adjustment is posted while an intent stands (services/clearinghouse/disputes.py post_adjustment).

CREATE TABLE cancel_intents (
    settlement_id uuid PRIMARY KEY,
    request_id    uuid NOT NULL,
    started_at    timestamptz NOT NULL
);
