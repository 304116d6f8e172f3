"""The ``bugsnag-ipython`` command: a subcommand per tool, registered in `SUBCOMMANDS`."""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bugsnag_ipython.core.config import Configuration

DEFAULT_DB = "bugsnag-collector.sqlite"
DEFAULT_PORT = 9339


@dataclass(frozen=True)
class Subcommand:
    """One subcommand: `configure` adds its arguments, `run` runs it and gives the exit code."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


SUBCOMMANDS: dict[str, Subcommand] = {}


def register(subcommand: Subcommand) -> Subcommand:
    """Add a subcommand to the ``bugsnag-ipython`` command."""
    SUBCOMMANDS[subcommand.name] = subcommand
    return subcommand


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bugsnag-ipython",
        description="BugSnag session tracking and error reporting for Jupyter notebooks.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for subcommand in SUBCOMMANDS.values():
        sub = commands.add_parser(subcommand.name, help=subcommand.help)
        subcommand.configure(sub)
        sub.set_defaults(run=subcommand.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


# -- collector ---------------------------------------------------------------------------


def _configure_collector(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port to listen on (0: any free port)"
    )
    parser.add_argument("--db", default=DEFAULT_DB, help="SQLite file to store requests in")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _run_collector(args: argparse.Namespace) -> int:
    from bugsnag_ipython.collector.server import Collector

    try:
        collector = Collector(args.db, host=args.host, port=args.port, verbose=args.verbose)
    except OSError as error:
        print(
            f"Cannot listen on {args.host}:{args.port}: {error.strerror or error}.", file=sys.stderr
        )
        return 1
    except sqlite3.Error as error:
        print(f"Cannot open the database {args.db}: {error}.", file=sys.stderr)
        return 1

    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {
        signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with collector:
            if not _is_loopback(args.host):
                print(
                    f"Warning: listening on {args.host}, reachable from the network.",
                    file=sys.stderr,
                    flush=True,
                )
            print(
                f"BugSnag collector: notify {collector.notify_url} sessions "
                f"{collector.sessions_url} report {collector.url}/ (db {args.db})",
                flush=True,
            )
            while not stopping.wait(0.5):
                pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("Collector stopped.", flush=True)
    return 0


# -- report ------------------------------------------------------------------------------


def _configure_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=DEFAULT_DB, help="the collector's SQLite file")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _run_report(args: argparse.Namespace) -> int:
    from bugsnag_ipython.collector.report import build_report, format_report_json
    from bugsnag_ipython.collector.report_text import format_report
    from bugsnag_ipython.collector.store import Store

    path = Path(args.db)
    if not path.is_file():
        print(
            f"No collector database at {path}; run 'bugsnag-ipython collector' first.",
            file=sys.stderr,
        )
        return 1
    try:
        with Store(path) as store:
            report = build_report(store)
    except sqlite3.Error as error:
        print(f"Cannot read the collector database {path}: {error}.", file=sys.stderr)
        return 1
    print(format_report_json(report) if args.json else format_report(report), end="")
    return 0


register(
    Subcommand("collector", "run a local BugSnag collector", _configure_collector, _run_collector)
)
register(
    Subcommand(
        "report",
        "print the stability report from a collector's database",
        _configure_report,
        _run_report,
    )
)


# -- outbox ------------------------------------------------------------------------------


def _configure_outbox(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", nargs="?", choices=("list", "flush"), default="list",
        help="list what is stored (the default), or deliver it now",
    )
    parser.add_argument(
        "--dir", help="the persistence directory (default: BUGSNAG_PERSISTENCE_DIRECTORY, "
        "else the user cache directory)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds flush may take (default 30)"
    )


def _run_outbox(args: argparse.Namespace) -> int:
    import os

    from bugsnag_ipython.core.config import Configuration, from_environment
    from bugsnag_ipython.delivery.outbox import default_directory

    changes, problems = from_environment(os.environ)
    for problem in problems:
        print(problem, file=sys.stderr)
    config = Configuration().replace(**changes)
    if args.dir:
        config = config.replace(persistence_directory=args.dir)
    directory = config.persistence_directory or default_directory()
    config = config.replace(persistence_directory=directory)
    if args.action == "flush":
        return _flush_outbox(config, args.timeout)
    return _list_outbox(Path(directory))


def _list_outbox(directory: Path) -> int:
    import time

    from bugsnag_ipython.core.config import shown_url
    from bugsnag_ipython.core.private_files import RefusedDirectory, make_private
    from bugsnag_ipython.delivery.outbox import Outbox
    from bugsnag_ipython.notebook.status import ago

    if directory.exists():
        try:
            make_private(directory, create=False)  # the rule kernels follow: nothing read there
        except RefusedDirectory as refused:
            print(refused, file=sys.stderr)
            return 1
    outbox = Outbox(directory)
    entries = outbox.listing()
    readable = [entry for entry in entries if entry.stored is not None]
    print(f"Outbox {outbox.root}: {len(entries)} payload(s)")
    groups: dict[tuple[str, str], list[float]] = {}
    for entry in readable:
        assert entry.stored is not None
        groups.setdefault((entry.stored.url, entry.stored.kind), []).append(entry.stored.created_at)
    now = time.time()
    for (url, kind), created in sorted(groups.items()):
        print(
            f"  {shown_url(url)}  {len(created)} {kind}(s), oldest {ago(now - min(created))}, "
            f"newest {ago(now - max(created))}"
        )
    held = sum(entry.owner_alive for entry in entries)
    if held:
        print(f"  {held} belong to running kernels, which are sending them")
    if len(readable) < len(entries):
        print(f"  {len(entries) - len(readable)} unreadable (set aside at the next delivery)")
    aside = outbox.set_aside_count()
    if aside:
        print(f"  {aside} file(s) set aside in {outbox.aside}")
    return 0


def _flush_outbox(config: Configuration, timeout: float) -> int:
    from bugsnag_ipython.delivery.delivery import Delivery

    delivery = Delivery()
    delivery.reconfigure(config)
    done = delivery.drain(timeout)
    stats = delivery.stats
    dropped = ", ".join(f"{n} {reason}" for reason, n in stats.dropped.most_common())
    print(
        f"Delivered {stats.delivered}; {delivery.queued} left"
        + (f"; dropped {dropped}" if dropped else "")
        + "."
    )
    if not done and stats.last_error:
        print(f"Last error: {stats.last_error}")
    return 0 if done else 1


register(
    Subcommand(
        "outbox",
        "list the payloads stored for delivery, or deliver them now ('outbox flush')",
        _configure_outbox,
        _run_outbox,
    )
)


# -- release -----------------------------------------------------------------------------


def _configure_release(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app-version", help="the version to report (default: the app version "
                        "a kernel here would use: BUGSNAG_APP_VERSION, else git, image or CI)")
    parser.add_argument("--release-stage", help="default: BUGSNAG_RELEASE_STAGE, else production")
    parser.add_argument("--builder-name", help="who or what made the release (default: this user)")
    parser.add_argument("--api-key", help="default: BUGSNAG_API_KEY")
    parser.add_argument("--dir", default=".", help="the notebooks' folder, in the repository whose "
                        "commit is the release (default: the current directory)")
    parser.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                        help="metadata to attach to the release (repeatable)")


def _run_release(args: argparse.Namespace) -> int:
    import getpass
    import os

    from bugsnag_ipython.core.config import Configuration, from_environment, shown_url
    from bugsnag_ipython.core.release import find_release
    from bugsnag_ipython.delivery.builds import (
        Build,
        BuildError,
        build_endpoint,
        checked_key,
        parse_metadata,
        report_build,
    )

    changes, problems = from_environment(os.environ)
    for problem in problems:
        print(problem, file=sys.stderr)
    config = Configuration().replace(**changes)
    try:
        api_key = checked_key(args.api_key or config.api_key)
        found = find_release(args.dir, os.environ)
        version = args.app_version or config.app_version or (found.version if found else None)
        if not version:
            raise BuildError("No release to report: no app version is set and none was found (no git "
                             f"commit in {os.path.abspath(args.dir)}, no hub image, no CI commit); pass "
                             "--app-version.")
        try:
            builder = args.builder_name or getpass.getuser()
        except (OSError, KeyError):
            builder = None
        build = Build(api_key, version, args.release_stage or config.release_stage, builder, found,
                      parse_metadata(args.metadata))
        endpoint = build_endpoint(api_key, os.environ)
        warnings = report_build(build, endpoint)
    except BuildError as error:
        print(f"bugsnag-ipython release: {error}", file=sys.stderr)
        return 1
    revision = build.release.revision if build.release else None
    print(f"Reported release {version} ({build.release_stage}"
          + (f", commit {revision[:12]}" if revision else "") + f") to {shown_url(endpoint)}.")
    for warning in warnings:
        print(f"  The Build API warned: {warning}")
    return 0


register(
    Subcommand(
        "release",
        "report the current release (its version and commit) to BugSnag's Build API",
        _configure_release,
        _run_release,
    )
)
