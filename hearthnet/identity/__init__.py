"""Node identity (ed25519), canonical JSON, signed envelopes, manifests."""
