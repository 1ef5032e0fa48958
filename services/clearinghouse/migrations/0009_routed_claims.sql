-- A claim is routed once (issue 9, item 1): the claim as the insured agency sees it (the agreement applied,
-- lines re-classified under the `insured` rule, with the catalogue versions used) and its audit flags are
-- stored with the pending row, and a retry re-drives exactly that, whatever catalogue is current by then.
-- NOT VALID: enforced for every new claim; rows of an older database (routed on the fly) are left as they are.
ALTER TABLE claims ADD COLUMN routed bytea, ADD COLUMN flags text[] NOT NULL DEFAULT '{}';
ALTER TABLE claims ADD CONSTRAINT claims_routed_recorded CHECK (routed IS NOT NULL) NOT VALID;
