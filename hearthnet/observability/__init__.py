"""Logging, metrics, traces and the doctor."""
