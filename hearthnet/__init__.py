"""HearthNet: a local-first AI mesh for a village."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("hearthnet")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
