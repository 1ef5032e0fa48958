"""Mutual TLS between the parties (SPEC §9, issue 10; docs/security.md).

`identity`: the SPIFFE identity scheme and the caller's identity from the handshake; `certs`: the
development CA, its leaves and the deny list on disk; `tls`: gRPC server and channel credentials that
follow a re-issued certificate without a restart, and the per-call check against the deny list.
"""
