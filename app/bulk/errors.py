"""What ends a bulk run early: a one-line reason the CLI prints without a traceback."""

PROG = "rnn-classifier-classify"


class Failure(Exception):
    """A one-line reason the run cannot go on; printed without a traceback."""
