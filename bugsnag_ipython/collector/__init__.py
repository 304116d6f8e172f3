"""A local stand-in for BugSnag's endpoints: receive, check, store and report (the
``bugsnag-ipython collector`` and ``report`` commands)."""

from .report import Report, build_report, format_report, format_report_json
from .server import Collector
from .store import Store
from .validation import check_request

__all__ = [
    "Collector", "Report", "Store", "build_report", "check_request", "format_report", "format_report_json",
]
