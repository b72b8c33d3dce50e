"""community.*: invites, promotions, demotions and revocations as capabilities (co-signed under the policy)."""
