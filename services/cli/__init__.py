"""The operator CLI `clearing-admin` (SPEC §10): offline commands call `clearing/` directly, the rest go over gRPC."""
