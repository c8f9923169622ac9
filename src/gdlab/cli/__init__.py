"""The ``gdlab`` command: ``compare`` (the main job), ``fit``, ``course`` and the rest.

One module per command group, each adding its sub-parsers with ``register(commands)``; the
parser is built from light modules only, and a command imports torch, the lab and the report
when it runs, so ``gdlab --help`` answers at once. Bad input is answered with one line on
stderr and exit status 2, never a traceback; so is a file that cannot be written (no space,
file too large, read-only folder): what could not be written and why, nothing half-written
left under its name.
"""

from __future__ import annotations

import os
import sys

from .. import __version__
from .._files import WriteError
from . import compare, course, data, figures, fit, tune
from .common import CommandError, Parser, RunFailed

#: the command modules, in the order ``gdlab --help`` lists their commands
COMMANDS = (compare, fit, course, figures, tune, data)


def build_parser() -> Parser:
    """The ``gdlab`` parser, with every command's sub-parser."""
    parser = Parser(prog="gdlab", description="The optimization methods of deep learning: "
                    "compare GD, Momentum, RMSProp and Adam, with and without learning-rate "
                    "decay, on real data, and see what they do.")
    parser.add_argument("--version", action="version", version=f"gdlab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv=None) -> int:
    """Run ``gdlab`` with ``argv`` (default: the command line); returns the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        args.argv = argv
        args.run(args)
    except (CommandError, ValueError, TypeError, FileNotFoundError, PermissionError,
            WriteError) as error:
        command = f"gdlab {args.command}" if "args" in locals() and args.command else \
            getattr(error, "prog", None) or "gdlab"
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"{command}: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the output went to a reader that stopped (| head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:  # e.g. a file written without atomic_write, which names it
        message = WriteError.of(error) if error.filename else error.strerror or error
        print(f"gdlab {args.command}: error: {' '.join(str(message).split())}",
              file=sys.stderr)
        return 2
    except RunFailed as error:
        print(f"gdlab {args.command}: {' '.join(str(error).split())}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt as error:
        command = f"gdlab {args.command}" if "args" in locals() and args.command else "gdlab"
        print(f"{command}: {' '.join(str(error).split()) or 'interrupted'}", file=sys.stderr)
        return 130
    return 0
