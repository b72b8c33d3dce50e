"""Provisioning actions: what touches the network, pip or a running node (bootstrap, model fetch, bundles, the llama.cpp wheel).

The pure renderer (hearthnet.provision) never imports from here."""
