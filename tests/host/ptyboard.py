"""A board on a pseudo terminal that keeps printing, for tests of commands that read a port.

pyserial empties the port's input queue just after it opens the port, at a moment a test
cannot observe from outside: a line written "once roam holds the port" can still be thrown
away on a busy machine. A real board keeps talking; so does this one, and the tests check
whose lines arrived rather than how many."""

import contextlib
import os
import threading

EVERY_S = 0.05


@contextlib.contextmanager
def talking(master, line):
    """Write ``line`` (bytes, one whole line) to the pty ``master`` every EVERY_S seconds
    while the block runs. Nobody reading, the queue fills and lines are dropped, as a
    board's are."""
    os.set_blocking(master, False)
    stop = threading.Event()

    def talk():
        while not stop.is_set():
            try:
                os.write(master, line)
            except BlockingIOError:
                pass  # the queue is full: nobody reads
            except OSError:
                return  # the pty is gone
            stop.wait(EVERY_S)

    t = threading.Thread(target=talk, name="pty-board", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
