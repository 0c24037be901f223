"""The package version (a module of its own: the build reads it, and nothing here imports)."""

__version__ = "0.1.0"
