"""Infrastructure shared by every party's service: gRPC server, errors, logs, database, identity of requests."""
