"""A local stand-in for BugSnag's endpoints: receive, check, store and report.

Run it with ``python -m bugsnag_ipython collector`` and point the notifier's endpoints at
the URLs it prints; ``python -m bugsnag_ipython report`` then shows the stability report.
"""

from .report import Report, ReportGroup, build_report, format_report, format_report_json
from .server import Collector
from .store import EventRecord, RequestRecord, SessionCountRecord, SessionRecord, Store
from .validation import Verdict, check_request

__all__ = [
    "Collector",
    "EventRecord",
    "Report",
    "ReportGroup",
    "RequestRecord",
    "SessionCountRecord",
    "SessionRecord",
    "Store",
    "Verdict",
    "build_report",
    "check_request",
    "format_report",
    "format_report_json",
]
