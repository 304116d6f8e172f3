"""A local stand-in for BugSnag's endpoints: receive, check, store and report.

Run it with ``python -m bugsnag_ipython collector`` and point the notifier's endpoints (and a
Build API client) at the URLs it prints; ``python -m bugsnag_ipython report`` then shows the stability report.
"""

from .report import Report, build_report, format_report, format_report_json
from .server import Collector
from .store import Store
from .validation import check_request

__all__ = [
    "Collector", "Report", "Store", "build_report", "check_request", "format_report", "format_report_json",
]
