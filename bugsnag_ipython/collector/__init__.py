"""A local stand-in for BugSnag's endpoints: receive, check, store and report.

Run it with ``python -m bugsnag_ipython collector`` and point the notifier's endpoints (and a
Build API client) at the URLs it prints; ``python -m bugsnag_ipython report`` then shows the stability report.
"""

from .records import BuildRecord, EventRecord, RequestRecord, SessionCountRecord, SessionRecord
from .report import Release, Report, build_report, format_report_json
from .report_text import format_report
from .server import Collector
from .store import Store
from .validation import Verdict, check_build, check_request

__all__ = [
    "BuildRecord", "Collector", "EventRecord", "Release", "Report", "RequestRecord",
    "SessionCountRecord", "SessionRecord", "Store", "Verdict", "build_report", "check_build",
    "check_request", "format_report", "format_report_json",
]
