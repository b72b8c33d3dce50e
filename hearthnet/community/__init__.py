"""Onboarding and trust: adding members and joining a community (no UI imports)."""
