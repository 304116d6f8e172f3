"""Where the notifier keeps what outlives a kernel: stored payloads, crash records, the device id."""

import os


def persistence_directory(configured: str | None) -> str:
    """The configured directory, else the user cache dir (imports platformdirs: not at load)."""
    if configured:
        return os.path.expanduser(configured)
    import platformdirs

    return str(platformdirs.user_cache_dir("bugsnag-ipython", appauthor=False))
