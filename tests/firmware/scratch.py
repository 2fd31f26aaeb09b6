"""What the firmware tests share (runs on MicroPython and CPython, like the board): a scratch
directory that stands for a board's flash, and a console that keeps what is printed to it."""

import os


def rmtree(path):
    """``path`` and everything below it gone (nothing there is fine)."""
    try:
        names = os.listdir(path)
    except OSError:
        return
    for n in names:
        p = path + "/" + n
        try:
            os.remove(p)
        except OSError:
            rmtree(p)
    try:
        os.rmdir(path)
    except OSError:
        pass


def fresh(path):
    """An empty directory at ``path`` (what was there is removed)."""
    rmtree(path)
    os.mkdir(path)


class Out:
    """A console (LogSink's ``out``): the text written to it."""

    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s
