"""``python -m bugsnag_ipython``: the command-line tools."""

from bugsnag_ipython.cli import main

raise SystemExit(main())
