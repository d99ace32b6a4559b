"""A worker's report is received as it is sent, whatever the parent is doing (bulk.workers._Reports)."""

from __future__ import annotations

import multiprocessing
import threading

from bulk.workers import _Reports


def test_a_report_larger_than_a_pipe_is_received_while_the_parent_does_not_ask() -> None:
    """A batch's report (about half a megabyte) is larger than a pipe holds: the worker's send
    returns without the parent reading (the parent may be blocked handing out lines)."""
    receiving, sending = multiprocessing.Pipe(duplex=False)
    reports = _Reports([receiving], ended=lambda index: "gone")
    lines = [(n, b'{"line":%d,"status":"settled"}' % n + b" " * 500, None) for n in range(1, 2_001)]  # about 1 MB
    sent = threading.Event()

    def worker() -> None:
        try:
            sending.send(("lines", lines))
            sending.send(("done", None))
            sent.set()
        except OSError:  # the test gave up on it and closed the pipe
            pass

    threading.Thread(target=worker, daemon=True).start()
    if not sent.wait(timeout=10):
        receiving.close()  # unblock the sender: the test fails, it does not hang
        raise AssertionError("the worker is still waiting for the parent to read its report")
    taken = reports.taken(timeout=1)
    while len(taken) < 2:
        taken += reports.taken(timeout=1)
    assert [(index, kind) for index, kind, _ in taken] == [(0, "lines"), (0, "done")]
    assert taken[0][2] == lines
    reports.join()


def test_a_worker_that_ends_without_its_last_report_is_an_error() -> None:
    receiving, sending = multiprocessing.Pipe(duplex=False)
    reports = _Reports([receiving], ended=lambda index: f"worker {index} ended (exit code -9)")
    sending.send(("lines", [(1, b"{}", None)]))
    sending.close()  # killed before "done"
    taken = reports.taken(timeout=5)
    while len(taken) < 2:
        taken += reports.taken(timeout=5)
    assert taken[1] == (0, "error", "worker 0 ended (exit code -9)")
    assert reports.taken(timeout=0) == []
    reports.join()
