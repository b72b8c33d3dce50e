"""HearthNet: a local-first AI mesh for a village."""

# A literal, not importlib.metadata: every command reads it, and the metadata lookup costs
# a command's start-up more than the rest of this package's top level (felt on a small box
# and under emulation). tests/unit/test_packaging.py holds it equal to pyproject.toml's.
__version__ = "0.1.0"

__all__ = ["__version__"]
