"""Signed HTTPS between nodes: request signatures, nonces, rate limits, TLS pinning, SSE streams, the server app and the signed client."""
