"""HearthNet's documentation, shipped as package data (hearthnet.docs): the hearthnet_docs corpus preset seeds it."""
