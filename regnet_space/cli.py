"""The ``regnet-space`` command line. Bad input ends with a one-line message and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from . import __version__
from .errors import ERROR_PREFIX, StopSignal, UserError, raise_stop_signal


def make_parser() -> argparse.ArgumentParser:
    from .commands import COMMANDS

    parser = argparse.ArgumentParser(
        prog="regnet-space",
        description="Explore neural-network design spaces: sample, train, compare by error EDFs, refine.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .redaction import install_log_redaction

    install_log_redaction()
    # SIGTERM and SIGHUP like Ctrl-C: unwind, clean up, exit 128 + signum (restored on return: main may run in
    # a test's process)
    previous = {sig: signal.signal(sig, raise_stop_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return _run(argv)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(argv: list[str] | None) -> int:
    from .redaction import redact

    try:
        args = make_parser().parse_args(argv)
        return args.handler(args) or 0
    except UserError as exc:
        print(f"{ERROR_PREFIX}{redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("regnet-space: interrupted", file=sys.stderr)
        return 130
    except StopSignal as stop:
        print(f"regnet-space: stopped by {signal.Signals(stop.signum).name}", file=sys.stderr)
        return 128 + stop.signum
    except BrokenPipeError:  # the reader of our output went away (`| head`): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail again
        return 1
    except Exception:  # a bug: keep the traceback for the report, but never with a password in it
        import traceback

        print(redact(traceback.format_exc()), end="", file=sys.stderr)
        return 1


def exit_now(code: int) -> None:
    """Exit without the interpreter's teardown of torch, Optuna and their threads: it took 1.9 s of the 2.0 s a
    stopped study worker needed to go (measured), and a worker must not outlive its runner. Everything the
    tool writes is already renamed or fsynced into place; the standard streams and logs are flushed here."""
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":  # how `study run` starts its workers
    exit_now(main())
