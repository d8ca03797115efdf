"""The version of flatlab (one home: setup.cfg and results.json read it here)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
