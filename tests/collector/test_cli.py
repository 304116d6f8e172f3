"""The ``bugsnag-ipython collector`` and ``report`` commands."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bugsnag_ipython.cli import main
from bugsnag_ipython.collector import Collector
from tests.payloads import event_payload, post, session_payload


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bugsnag_ipython", "collector", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "cli.sqlite"


def test_the_collector_command_prints_its_urls_accepts_and_stops_on_sigterm(db: Path) -> None:
    process = _start("--port", "0", "--db", str(db))
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        urls = re.findall(r"http://127\.0\.0\.1:(\d+)(/\w+)", line)
        assert [path for _, path in urls] == ["/notify", "/sessions"]
        port = int(urls[0][0])
        assert port != 0
        assert f" report http://127.0.0.1:{port}/ " in line  # the report as a web page

        response = post(f"http://127.0.0.1:{port}/sessions", "sessions", session_payload("s-cli"))
        assert response.status_code == 202

        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0
    assert stdout.strip() == "Collector stopped."
    assert "Traceback" not in stderr
    assert stderr == ""  # nothing logged per request


def test_a_host_beyond_loopback_gets_a_warning(db: Path) -> None:
    process = _start("--host", "0.0.0.0", "--port", "0", "--db", str(db))
    try:
        assert process.stdout is not None
        assert "http://" in process.stdout.readline()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait()
    assert stderr.strip().splitlines() == [
        "Warning: listening on 0.0.0.0, reachable from the network."
    ]


def test_a_port_in_use_is_one_sentence(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Collector(db) as running:
        assert main(["collector", "--port", str(running.port), "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Cannot listen on 127.0.0.1:{running.port}")
    assert len(err.strip().splitlines()) == 1


def test_report_on_a_missing_database_is_one_sentence(db: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bugsnag_ipython", "report", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"No collector database at {db}; run 'bugsnag-ipython collector' first."
    ]
    assert not db.exists()


def test_report_on_a_file_that_is_not_a_database(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db.write_bytes(b"not a database" * 100)
    assert main(["report", "--db", str(db)]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_report_prints_text_and_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Collector(db) as collector:
        for kind, url, payload in (
            ("sessions", collector.sessions_url, session_payload("s1", version="3.1.0")),
            ("sessions", collector.sessions_url, session_payload("s2", version="3.1.0")),
            ("events", collector.notify_url, event_payload(session_id="s1", version="3.1.0")),
        ):
            assert post(url, kind, payload).ok

    assert main(["report", "--db", str(db)]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("3.1.0"))
    assert row.split()[:5] == ["3.1.0", "production", "2", "1", "50.0%"]

    assert main(["report", "--db", str(db), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["releases"][0]["stability_percent"] == 50.0


def test_bad_arguments_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["collector", "--port", "many"])
    assert exit_info.value.code == 2
    assert "usage: bugsnag-ipython collector" in capsys.readouterr().err
