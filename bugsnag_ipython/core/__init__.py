"""The core: options, the session rules and the launch session; no IPython, no network."""
