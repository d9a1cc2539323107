"""The ``hpcsoa`` command tree and :func:`main`, the entry point of the console script.

``main(argv)`` never raises for ordinary failures: it prints one ``error:`` line (and a
``hint:``) on stderr and returns the exit code (see ``_errors.ExitCode``). Tests call it with
an argv list; ``hpcsoa`` and ``python -m hpcsoa`` call it with ``sys.argv``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

import hpcsoa

from ._base import CONTEXT_SETTINGS, HpcGroup
from ._errors import EXIT_CODES_HELP, ExitCode, report_exception
from ._options import CliState, verbose_option

__all__ = ["cli", "main"]


@click.group(cls=HpcGroup, context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES_HELP)
@click.version_option(hpcsoa.__version__, "--version", prog_name="hpcsoa")
@verbose_option
def cli() -> None:
    """Drive the Microsoft HPC Pack REST web service: SOA sweeps, jobs, tasks and nodes.

    Connection options (on every command that talks to a service): --url, --username,
    --password or HPCSOA_URL / HPCSOA_USERNAME / HPCSOA_PASSWORD. Start with `hpcsoa demo`.
    """


@cli.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
    epilog="",
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def serve(args: tuple[str, ...]) -> int:
    """Run the HPC Pack REST emulator (see `hpcsoa serve --help`)."""
    from hpcsoa.emulator import serve_main

    return serve_main(list(args))


def _register() -> None:
    from ._demo import demo
    from ._scheduler import cluster, jobs, nodes, tasks
    from ._session import session
    from ._sweep import sweep

    for command in (demo, sweep, session, jobs, tasks, nodes, cluster):
        cli.add_command(command)


_register()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "serve":
        # Verbatim passthrough: the emulator owns its flags, --help included.
        from hpcsoa.emulator import serve_main

        return serve_main(args[1:])
    state = CliState()
    try:
        if not args:
            with click.Context(cli, info_name="hpcsoa") as ctx:
                click.echo(cli.get_help(ctx))
            return ExitCode.OK
        result = cli.main(args=args, prog_name="hpcsoa", standalone_mode=False, obj=state)
        return int(result) if isinstance(result, int) else ExitCode.OK
    except SystemExit as exc:  # a command that chose sys.exit(): keep its code
        code = exc.code
        return code if isinstance(code, int) else (ExitCode.OK if code is None else 1)
    except BaseException as exc:
        return report_exception(exc, verbose=state.verbose, secrets=state.secrets)
    finally:
        state.close()
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
