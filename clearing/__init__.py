"""The pure domain core of the clearing house: no I/O, no clock, no randomness (SPEC §2)."""
