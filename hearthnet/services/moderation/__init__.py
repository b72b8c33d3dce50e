"""Moderation without revocation: trusted members hide and unhide posts and file adverts."""
