"""The parties of the clearing house as services, plus their tools (SPEC §2): I/O lives here, not in `clearing/`."""
