"""How the harness's own processes (load generators, floor) speak: mutual TLS from the stack's certificate
directory, as in production, or plaintext when the stack runs insecure (an empty directory: `BENCH_INSECURE=1`)."""

from __future__ import annotations

from services.security.party import Transport


def transport_for(certs_dir: str) -> Transport:
    return Transport.tls(certs_dir) if certs_dir else Transport.plaintext()
