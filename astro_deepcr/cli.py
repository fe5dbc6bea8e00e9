# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The ``astro-deepcr`` command line tool.

Sub-commands: ``clean``, ``flag``, ``drizzle``, ``models``, ``bench``,
``demo`` (the modules in `COMMANDS`, `astro_deepcr.commands`), plus those of
the plug-in modules in `PLUGINS` that are installed (``evaluate``,
``make-dataset``, ``train``). Exit status: 0 when everything succeeded, 1 when
a file (or the run) failed -- with one line per failed file on stderr -- and 2
for usage errors. The work is done by `astro_deepcr.batch` and the modules it
calls; this module only assembles the parser and reports.

A plug-in is a module exposing ``add_subparser(subparsers)``, which adds its
sub-commands to the ``subparsers`` of the main parser and sets ``func`` (the
parsed namespace in, an exit status out) as their default. Every plug-in is
imported to build the parser, so ``astro-deepcr --help`` costs what their
imports cost: a plug-in imports its heavy modules inside ``func``, not at
module level (``tests/test_light_imports.py`` checks this).
"""

import argparse
import importlib
import os
import sys

from .commands.options import PROG, UsageError, error

__all__ = ["main", "build_parser", "PLUGINS", "COMMANDS", "UsageError"]

#: The core sub-commands, one module per job, each with ``add_subparser(subparsers)``.
COMMANDS = ("astro_deepcr.commands.files", "astro_deepcr.commands.drizzle", "astro_deepcr.commands.models",
            "astro_deepcr.commands.trial")
#: Modules that add sub-commands with ``add_subparser(subparsers)``; skipped when absent.
PLUGINS = ("astro_deepcr.evaluation.report", "astro_deepcr.training.cli", "astro_deepcr.evaluation.simulated_demo",
           "astro_deepcr.training.ground_cli", "astro_deepcr.adapt_cli", "astro_deepcr.precision_cli")


def _add_plugins(subparsers):
    """Sub-commands of the optional modules in `PLUGINS`; a missing or broken one is left out."""
    for module_name in PLUGINS:
        try:
            module = importlib.import_module(module_name)
            module.add_subparser(subparsers)
        except Exception:  # an optional part must never break the core commands
            continue


def build_parser():
    """The `argparse.ArgumentParser` of ``astro-deepcr``."""
    from .provenance import version as __version__

    parser = argparse.ArgumentParser(
        prog=PROG, description="deepCR cosmic-ray detection and cleaning for astronomical images.",
        epilog="Run 'astro-deepcr COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS:
        importlib.import_module(module_name).add_subparser(subparsers)
    _add_plugins(subparsers)
    return parser


def main(argv=None):
    """Run ``astro-deepcr`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 2
    if getattr(args, "func", None) is None:
        parser.print_usage(sys.stderr)
        error("a command is required")
        return 2
    from .fitsutil import strict_truncation

    strict_truncation()
    from astropy import log

    level = log.level
    if getattr(args, "quiet", False):  # --quiet: the model choice and other INFO lines too
        log.setLevel("WARNING")
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        error(exc)
        return 2
    except BrokenPipeError:  # output piped into head & co.: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except Exception as exc:
        error(f"{type(exc).__name__}: {exc}")
        return 1
    finally:
        log.setLevel(level)


if __name__ == "__main__":
    sys.exit(main())
