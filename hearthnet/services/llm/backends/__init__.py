"""LLM backends (one module each)."""
