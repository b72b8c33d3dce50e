"""The pure provisioning renderer: hardware facts and tiers, profiles, the site manifest, implications, render-profile,
the model index and locks. Ansible and Nix call it; it imports no node, transport or service code (actions: provision.actions)."""
