"""The ``bugsnag-ipython`` command: the local collector, its report, the outbox, a release. Each
failure is one sentence on stderr and exit status 1; bad arguments are argparse's usage error (2)."""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bugsnag_ipython.collector import Collector, Store, build_report, format_report, format_report_json

if TYPE_CHECKING:
    from bugsnag_ipython.core.config import Configuration

DEFAULT_DB = "bugsnag-collector.sqlite"


class Failed(Exception):
    """What went wrong, as the one sentence the command prints."""


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="bugsnag-ipython",
        description="BugSnag session tracking and error reporting for Jupyter notebooks.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    collector = commands.add_parser("collector", help="run a local BugSnag collector")
    collector.add_argument("--host", default="127.0.0.1", help="address to listen on")
    collector.add_argument("--port", type=int, default=9339, help="port to listen on (0: any free port)")
    collector.add_argument("--db", default=DEFAULT_DB, help="SQLite file to store requests in")
    collector.add_argument("--verbose", action="store_true", help="log every request to stderr")

    report = commands.add_parser("report", help="print the stability report from a collector's database")
    report.add_argument("--db", default=DEFAULT_DB, help="the collector's SQLite file")
    report.add_argument("--json", action="store_true", help="print the report as JSON")

    outbox = commands.add_parser("outbox", help="list the payloads stored for delivery, or deliver them now")
    outbox.add_argument("action", nargs="?", choices=("list", "flush"), default="list",
                        help="list what is stored (the default), or deliver it now")
    outbox.add_argument("--dir", help="the persistence directory (default: "
                        "BUGSNAG_PERSISTENCE_DIRECTORY, else the user cache directory)")
    outbox.add_argument("--timeout", type=float, default=30.0, help="seconds flush may take (default 30)")

    release = commands.add_parser("release", help="report the current release (its version and commit) to "
                                  "BugSnag's Build API")
    release.add_argument("--app-version", help="the version to report (default: the app version "
                         "a kernel here would use: BUGSNAG_APP_VERSION, else git, image or CI)")
    release.add_argument("--release-stage", help="default: BUGSNAG_RELEASE_STAGE, else production")
    release.add_argument("--builder-name", help="who or what made the release (default: this user)")
    release.add_argument("--api-key", help="default: BUGSNAG_API_KEY")
    release.add_argument("--dir", default=".", help="the notebooks' folder, in the repository whose "
                         "commit is the release (default: the current directory)")
    release.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                         help="metadata to attach to the release (repeatable)")
    args = parser.parse_args(argv)
    run = {"collector": run_collector, "report": run_report, "outbox": run_outbox, "release": run_release}
    try:
        return run[args.command](args)
    except Failed as failure:
        print(failure, file=sys.stderr)
        return 1


def run_collector(args: argparse.Namespace) -> int:
    try:
        collector = Collector(args.db, host=args.host, port=args.port, verbose=args.verbose)
    except OSError as error:
        raise Failed(f"Cannot listen on {args.host}:{args.port}: {error.strerror or error}.") from None
    except sqlite3.Error as error:
        raise Failed(f"Cannot open the database {args.db}: {error}.") from None
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with collector:
        try:
            loopback = args.host == "localhost" or ipaddress.ip_address(args.host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            print(f"Warning: listening on {args.host}, reachable from the network.", file=sys.stderr,
                  flush=True)
        print(f"BugSnag collector: notify {collector.notify_url} sessions "
              f"{collector.sessions_url} report {collector.url}/ (db {args.db})", flush=True)
        stopping.wait()
    print("Collector stopped.", flush=True)
    return 0


def run_report(args: argparse.Namespace) -> int:
    path = Path(args.db)
    if not path.is_file():
        raise Failed(f"No collector database at {path}; run 'bugsnag-ipython collector' first.")
    try:
        with Store(path) as store:
            report = build_report(store)
    except sqlite3.Error as error:
        raise Failed(f"Cannot read the collector database {path}: {error}.") from None
    print(format_report_json(report) if args.json else format_report(report), end="")
    return 0


def _configuration(**changes: Any) -> Configuration:
    """The options a kernel started here would have from the environment, with `changes`."""
    from bugsnag_ipython.core.config import Configuration, from_environment

    found, problems = from_environment(os.environ)
    for problem in problems:
        print(problem, file=sys.stderr)
    return Configuration().replace(**found).replace(**changes)


def run_outbox(args: argparse.Namespace) -> int:
    from bugsnag_ipython.core.config import shown_url
    from bugsnag_ipython.core.persistence import persistence_directory
    from bugsnag_ipython.core.private_files import RefusedDirectory, make_private
    from bugsnag_ipython.delivery.delivery import Delivery
    from bugsnag_ipython.delivery.outbox import Outbox
    from bugsnag_ipython.notebook.status import ago

    config = _configuration(**({"persistence_directory": args.dir} if args.dir else {}))
    directory = persistence_directory(config.persistence_directory)
    if args.action == "flush":
        delivery = Delivery()
        delivery.reconfigure(config.replace(persistence_directory=directory))
        done = delivery.drain(args.timeout)
        stats = delivery.stats
        dropped = ", ".join(f"{n} {reason}" for reason, n in stats.dropped.most_common())
        print(f"Delivered {stats.delivered}; {delivery.queued} left"
              + (f"; dropped {dropped}" if dropped else "") + ".")
        if not done and stats.last_error:
            print(f"Last error: {stats.last_error}")
        return 0 if done else 1
    if Path(directory).exists():
        try:
            make_private(Path(directory), create=False)  # the rule kernels follow: nothing read there
        except RefusedDirectory as refused:
            raise Failed(str(refused)) from None
    outbox = Outbox(Path(directory))
    entries = outbox.listing()
    groups: dict[tuple[str, str], list[float]] = {}
    for entry in entries:
        if entry.stored is not None:
            groups.setdefault((entry.stored.url, entry.stored.kind), []).append(entry.stored.created_at)
    print(f"Outbox {outbox.root}: {len(entries)} payload(s)")
    now = time.time()
    for (url, kind), created in sorted(groups.items()):
        print(f"  {shown_url(url)}  {len(created)} {kind}(s), oldest {ago(now - min(created))}, "
              f"newest {ago(now - max(created))}")
    notes = {
        "belong to running kernels, which are sending them": sum(entry.owner_alive for entry in entries),
        "unreadable (set aside at the next delivery)": sum(entry.stored is None for entry in entries),
        f"file(s) set aside in {outbox.aside}": outbox.set_aside_count(),
    }
    for note, count in notes.items():
        if count:
            print(f"  {count} {note}")
    return 0


def run_release(args: argparse.Namespace) -> int:
    from bugsnag_ipython.core.config import shown_url
    from bugsnag_ipython.core.release import find_release
    from bugsnag_ipython.delivery import builds

    config = _configuration()
    try:
        api_key = builds.checked_key(args.api_key or config.api_key)
        found = find_release(args.dir, os.environ)
        version = args.app_version or config.app_version or (found.version if found else None)
        if not version:
            raise builds.BuildError("No release to report: no app version is set and none was found (no git "
                             f"commit in {os.path.abspath(args.dir)}, no hub image, no CI commit); pass "
                             "--app-version.")
        try:
            builder = args.builder_name or getpass.getuser()
        except (OSError, KeyError):
            builder = None
        build = builds.Build(api_key, version, args.release_stage or config.release_stage, builder, found,
                      builds.parse_metadata(args.metadata))
        endpoint = builds.build_endpoint(api_key, os.environ)
        warnings = builds.report_build(build, endpoint)
    except builds.BuildError as error:
        raise Failed(f"bugsnag-ipython release: {error}") from None
    revision = build.release.revision if build.release else None
    print(f"Reported release {version} ({build.release_stage}"
          + (f", commit {revision[:12]}" if revision else "") + f") to {shown_url(endpoint)}.")
    for warning in warnings:
        print(f"  The Build API warned: {warning}")
    return 0
