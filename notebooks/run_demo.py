"""Run the demo notebook (`make demo`)."""

from bugsnag_ipython.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
