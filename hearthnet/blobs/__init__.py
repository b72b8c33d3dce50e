"""Content-addressed blobs: BLAKE3 chunks and the manifests that list them."""
