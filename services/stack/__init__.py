"""Wiring and running the whole stack: one process per region (treating + insured agency), the
clearing house and the HIS simulator, each party on its own database."""
