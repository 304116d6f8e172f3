"""Event bodies stay under 1 MB, trimmed in the documented order; redaction works on keys."""

from __future__ import annotations

import json
import math
from typing import Any

from bugsnag_ipython.report.payloads import REDACTED, encode, redact, redact_event
from bugsnag_ipython.report.trimming import MAX_PAYLOAD_BYTES, encode_within_limit, fit

LIMIT = 1_000_000


def frame(n: int, code: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {"file": f"lib/m{n}.py", "lineNumber": n, "method": f"f{n}", "inProject": False}
    if code:
        entry["code"] = {str(n + i): "x = compute(a, b, c)  # " + "y" * 150 for i in range(7)}
    return entry


def payload(**event: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "exceptions": [{"errorClass": "ValueError", "message": "bad", "type": "python",
                        "stacktrace": [frame(1)]}],
        "severity": "error",
        "severityReason": {"type": "unhandledException"},
        "unhandled": True,
        "app": {"type": "jupyter"},
        "device": {"hostname": "h"},
        "breadcrumbs": [],
        "metaData": {},
    }
    body.update(event)
    return {"apiKey": "", "payloadVersion": "4.0", "notifier": {"name": "n"}, "events": [body]}


def crumb(n: int, size: int = 10) -> dict[str, Any]:
    return {"timestamp": f"2026-01-01T00:00:{n % 60:02d}.000Z", "name": f"In [{n}]", "type": "process",
            "metaData": {"detail": "d" * size}}


def sent_size(trimmed: dict[str, Any]) -> int:
    return len(encode({**trimmed, "apiKey": "a" * 32}))


def test_a_small_event_is_left_alone() -> None:
    original = payload()
    assert fit(original) is original


def test_a_5_mb_metadata_string_is_cut_and_the_exception_kept() -> None:
    original = payload(metaData={"big": {"blob": "x" * 5_000_000, "small": "kept"}})
    trimmed = fit(original)
    assert sent_size(trimmed) < LIMIT
    event = trimmed["events"][0]
    assert event["exceptions"][0]["errorClass"] == "ValueError"
    assert event["metaData"]["big"]["small"] == "kept"
    assert event["metaData"]["big"]["blob"].endswith("***<4990000> CHARS TRUNCATED***")
    assert event["exceptions"][0]["stacktrace"][0]["code"]  # nothing else needed trimming
    assert len(original["events"][0]["metaData"]["big"]["blob"]) == 5_000_000  # not changed in place


def test_then_the_oldest_breadcrumbs_go_and_one_says_so() -> None:
    crumbs = [crumb(n, 9_000) for n in range(200)]  # 1.8 MB, each under the string limit
    trimmed = fit(payload(breadcrumbs=crumbs))
    assert sent_size(trimmed) < LIMIT
    kept = trimmed["events"][0]["breadcrumbs"]
    assert kept[-1]["name"] == "In [199]"  # the newest stay
    assert kept[0]["name"].startswith("Removed, along with ") and "older breadcrumbs" in kept[0]["name"]
    assert len(kept) < 200


def test_then_code_windows_from_the_outermost_frames() -> None:
    frames = [frame(n) for n in range(800)]  # about 1 MB of code windows
    exceptions = [{"errorClass": "E", "message": "m", "type": "python", "stacktrace": frames}]
    original = payload(exceptions=exceptions)
    trimmed = fit(original)
    assert sent_size(trimmed) < LIMIT
    shown = trimmed["events"][0]["exceptions"][0]["stacktrace"]
    assert len(shown) == 800 and "code" in shown[0] and "code" not in shown[-1]
    assert all("code" in f for f in original["events"][0]["exceptions"][0]["stacktrace"])


def test_then_long_messages_are_cut_and_deep_stacks_lose_their_middle() -> None:
    frames = [frame(n, code=False) for n in range(20_000)]
    exceptions = [{"errorClass": "RecursionError", "message": "m" * 3_000_000, "type": "python",
                   "stacktrace": frames}]
    trimmed = fit(payload(exceptions=exceptions))
    assert sent_size(trimmed) < LIMIT
    [exception] = trimmed["events"][0]["exceptions"]
    assert exception["errorClass"] == "RecursionError"
    assert exception["message"].endswith("CHARS TRUNCATED***") and len(exception["message"]) < 20_000
    shown = exception["stacktrace"]
    assert shown[0]["method"] == "f0" and shown[-1]["method"] == "f19999"
    assert any("19950 frames left out" in f["method"] for f in shown)


def dead_kernel(threads: int, depth: int, *, code: bool, crashed: int = 0) -> dict[str, Any]:
    """A KernelDied-like payload: every thread's stack, the crashing one's also the exception's."""
    def stack(thread: int) -> list[dict[str, Any]]:
        return [{**frame(n, code), "file": f"cell-t{thread}"} for n in range(depth)]

    listed = [{"id": f"0x{t:x}", "name": f"thread {t}", "errorReportingThread": t == crashed,
               "type": "python", "stacktrace": stack(t)} for t in range(threads)]
    exceptions = [{"errorClass": "KernelDied", "message": "segmentation fault (SIGSEGV)", "type": "python",
                   "stacktrace": stack(crashed)}]
    return payload(exceptions=exceptions, threads=listed, breadcrumbs=[crumb(n) for n in range(50)])


def test_the_other_threads_lose_their_code_windows_first_and_the_crashing_thread_stays_whole() -> None:
    original = dead_kernel(20, 100, code=True, crashed=3)  # 10 threads of a segfaulted kernel
    assert sent_size(original) > 2 * LIMIT
    trimmed = fit(original)
    assert sent_size(trimmed) < LIMIT
    event, before = trimmed["events"][0], original["events"][0]
    assert event["exceptions"] == before["exceptions"]  # every frame, every code window
    assert event["threads"][3] == before["threads"][3]
    assert event["breadcrumbs"] == before["breadcrumbs"]
    others = [thread for thread in event["threads"] if not thread["errorReportingThread"]]
    assert len(others) == 19 and all(len(thread["stacktrace"]) == 100 for thread in others)
    # As far as needed, from the last threads' outermost frames: the first threads keep theirs.
    windows = [sum("code" in f for f in thread["stacktrace"]) for thread in others]
    assert windows == sorted(windows, reverse=True) and windows[0] == 100 and windows[-1] == 0
    assert all("code" in f for f in before["threads"][0]["stacktrace"])  # not changed in place


def test_then_their_deep_stacks_lose_their_middle_and_then_whole_threads_go_last_first() -> None:
    original = dead_kernel(300, 200, code=False, crashed=5)  # 4 MB of stacks without code
    trimmed = fit(original)
    assert sent_size(trimmed) < LIMIT
    event, before = trimmed["events"][0], original["events"][0]
    assert event["exceptions"] == before["exceptions"] and event["breadcrumbs"] == before["breadcrumbs"]
    threads = event["threads"]
    assert threads[5] == before["threads"][5]  # the crashing thread, all 200 frames
    assert [t["id"] for t in threads] == [t["id"] for t in before["threads"][: len(threads)]]
    assert 5 < len(threads) < 300
    others = [thread for thread in threads if not thread["errorReportingThread"]]
    for thread in others:
        frames = thread["stacktrace"]
        assert len(frames) == 51 and frames[25]["method"] == "[150 frames left out]"
        assert (frames[0]["method"], frames[-1]["method"]) == ("f0", "f199")  # innermost, outermost


def test_a_crashing_thread_too_deep_for_the_limit_is_cut_like_the_exception() -> None:
    original = dead_kernel(2, 8_000, code=False)  # 550 kB each: the exception and its thread
    trimmed = fit(original)
    assert sent_size(trimmed) < LIMIT
    event = trimmed["events"][0]
    assert [len(e["stacktrace"]) for e in event["exceptions"]] == [51]
    assert [len(t["stacktrace"]) for t in event.get("threads", [])] in ([51], [51, 51])


def test_even_absurd_events_fit_and_keep_every_exception_class() -> None:
    exceptions = [{"errorClass": f"E{n}", "message": "m" * 50_000, "type": "python",
                   "stacktrace": [frame(i) for i in range(100)]} for n in range(100)]
    trimmed = fit(payload(exceptions=exceptions, context="c" * 2_000_000, user={"id": "u" * 500_000}))
    assert sent_size(trimmed) < LIMIT
    assert [e["errorClass"] for e in trimmed["events"][0]["exceptions"]] == [f"E{n}" for n in range(100)]


def test_the_limit_leaves_room_for_the_api_key() -> None:
    assert MAX_PAYLOAD_BYTES + 200 < LIMIT


def test_redaction_matches_keys_case_insensitively_as_substrings_at_any_depth() -> None:
    value = {"Password": "p", "db": {"API_KEY_prod": "k", "rows": 3, "items": [{"auth_token": "t"}]}}
    assert redact(value, ("password", "api_key", "token")) == {
        "Password": REDACTED,
        "db": {"API_KEY_prod": REDACTED, "rows": 3, "items": [{"auth_token": REDACTED}]},
    }
    assert value["Password"] == "p"  # a copy


def test_an_event_is_redacted_in_metadata_breadcrumbs_and_user_but_not_source() -> None:
    event = payload(
        metaData={"request": {"Cookie": "c", "path": "/"}, "notebook": {"cellSource": "password = 'x'"}},
        breadcrumbs=[{"name": "login", "type": "manual", "timestamp": "t", "metaData": {"secret": "s"}}],
        user={"id": "1", "email": "a@b.c"},
    )["events"][0]
    event["exceptions"][0]["stacktrace"][0]["code"] = {"1": "token = 'abc'"}
    redact_event(event, ("cookie", "secret", "email", "token", "password"))
    assert event["metaData"]["request"] == {"Cookie": REDACTED, "path": "/"}
    assert event["breadcrumbs"][0]["metaData"] == {"secret": REDACTED}
    assert event["breadcrumbs"][0]["name"] == "login"
    assert event["user"] == {"id": "1", "email": REDACTED}
    assert event["metaData"]["notebook"]["cellSource"] == "password = 'x'"
    assert event["exceptions"][0]["stacktrace"][0]["code"] == {"1": "token = 'abc'"}


def test_metadata_json_cannot_hold_does_not_break_encoding() -> None:
    cyclic: dict[str, Any] = {"name": "loop"}
    cyclic["self"] = cyclic
    event = payload(metaData={"odd": {"cycle": cyclic, "obj": object(), "set": {1, 2}}})["events"][0]
    event["metaData"]["odd"][("tuple", "key")] = 1  # type: ignore[index]
    redact_event(event, ())
    decoded = json.loads(encode(event))
    assert decoded["metaData"]["odd"]["cycle"]["name"] == "loop"
    assert decoded["metaData"]["odd"]["obj"].startswith("<object object")


def test_an_event_is_encoded_whole_with_repeated_frames_and_odd_values() -> None:
    shared = frame(2)
    crumbs = [crumb(n) for n in range(5)] + [{**crumb(5), "metaData": {"name": "caf\u00e9 \udcff"}}]
    body = payload(breadcrumbs=crumbs, metaData={"odd": {"obj": object(), ("t",): 1, "nan": math.nan}})
    body["events"][0]["exceptions"][0]["stacktrace"] = [frame(1), shared, shared, frame(3), shared]
    body["events"][0]["exceptions"].append({"errorClass": "KeyError", "message": "\udcff",
                                            "type": "python", "stacktrace": [shared]})
    trimmed, encoded = encode_within_limit(body)
    assert trimmed is body
    decoded = json.loads(encoded)["events"][0]
    first, second = decoded["exceptions"]
    assert first["stacktrace"] == [frame(1), shared, shared, frame(3), shared]
    assert second == {"errorClass": "KeyError", "message": "\ufffd", "type": "python", "stacktrace": [shared]}
    assert decoded["breadcrumbs"][:5] == crumbs[:5]
    assert decoded["breadcrumbs"][5]["metaData"] == {"name": "caf\u00e9 \ufffd"}
    assert decoded["metaData"]["odd"]["obj"].startswith("<object object")
    assert decoded["metaData"]["odd"]["nan"] == "nan"
    assert ("t",) not in decoded["metaData"]["odd"] and len(decoded["metaData"]["odd"]) == 2
    assert len(encoded) == len(json.dumps(json.loads(encoded), separators=(",", ":"),
                                          ensure_ascii=False).encode())
