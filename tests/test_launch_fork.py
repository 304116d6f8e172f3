"""The launch session and `os.fork()`: notebooks fork (multiprocessing) while the launch session's
payload is being made on its own thread; a child must neither wait for that thread's locks nor
send the parent's launch session a second time."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from bugsnag_ipython.core.launch import LaunchSession
from bugsnag_ipython.core.sessions import SessionSnapshot

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")

SESSION = SessionSnapshot("launch", 1_700_000_000.0, 0, 0, False)
CHILD_SENT = 3


def test_a_child_forked_while_the_launch_session_is_sent_neither_hangs_nor_sends_it_again() -> None:
    sending, finish = threading.Event(), threading.Event()
    sent: list[SessionSnapshot] = []

    def send(session: SessionSnapshot) -> None:
        sending.set()
        finish.wait(10)  # a slow disk: the payload is still being stored
        sent.append(session)

    launch = LaunchSession(send=send, prepare=lambda: None, busy=lambda: False)
    launch.launch(lambda: launch.hold(SESSION))
    assert sending.wait(10), "the launch thread never sent"
    # The fork waits for the send to end (the thread holds no lock a child could inherit held).
    threading.Timer(0.3, finish.set).start()
    pid = os.fork()
    if pid == 0:  # the child: a report here sends what is still to be sent
        signal.alarm(5)  # hung on a lock held by a thread that does not exist here
        launch.send_now()
        os._exit(CHILD_SENT if len(sent) > 1 else 0)
    _, status = os.waitpid(pid, 0)
    assert not os.WIFSIGNALED(status), "the child hung on the launch thread's lock"
    assert os.WEXITSTATUS(status) == 0, "the child sent the parent's launch session again"
    assert sent == [SESSION]
