"""The clearing house (清算中心): translation, routing, the inter-region ledger."""
