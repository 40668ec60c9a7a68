"""The exception types the CLI turns into a clean message and an exit code instead of a traceback."""

ERROR_PREFIX = "regnet-space: error: "  # how the one line of a user-facing failure begins (a runner reads its workers')


class UserError(ValueError):
    """Bad input from the user: a spec field, a file, a flag. The message names the problem."""


class StopSignal(BaseException):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C (cleanup runs; a BaseException, so no `except Exception`
    swallows it), and exit 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def raise_stop_signal(signum: int, frame: object) -> None:
    """A signal handler: turn the signal into a StopSignal raised where the program is."""
    raise StopSignal(signum)
