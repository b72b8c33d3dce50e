"""HearthNet's profile manifests, their JSON Schemas and the model index, shipped as package data (hearthnet.profiles)."""
