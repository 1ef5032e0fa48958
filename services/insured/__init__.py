"""The insured region's agency (参保地医保经办机构): members, filings, accumulators, adjudication."""
