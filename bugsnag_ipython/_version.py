"""The package version, apart: the notifier facts need it without importing the public API."""

__version__ = "0.1.0"
