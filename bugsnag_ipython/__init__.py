"""BugSnag session tracking and error reporting for Jupyter notebooks."""

__version__ = "0.1.0"
