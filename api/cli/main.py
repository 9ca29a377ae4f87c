"""The ``bwc`` program: one Typer app, a module per command group."""

from __future__ import annotations

import logging
import sys
from typing import Any

import typer
from typer._click.core import Context as ClickContext  # the type TyperGroup.invoke is declared with
from typer.core import TyperGroup
from typer.exceptions import TyperException

from api.cli import common
from api.cli.common import print_json
from api.cli.failure import report
from config import logs
from config.errors import BwcError
from config.settings import get_settings


class HandledGroup(TyperGroup):
    """The root command: whatever a command raises ends here as one line on stderr and an exit code."""

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):
            raise  # ``fail()``, ``typer.Exit(code)`` and usage errors already say what they mean
        except Exception as exc:
            ctx.exit(report(exc, ctx.invoked_subcommand))


_app = typer.Typer(
    cls=HandledGroup,
    no_args_is_help=True,
    add_completion=False,
    help="BWC Evidence: body-worn-camera evidence service.",
    pretty_exceptions_enable=False,  # a pretty traceback shows code and locals, which may hold secrets
)
config_app = typer.Typer(no_args_is_help=True, help="Settings.")
_app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings (secrets masked) as JSON."""
    print_json(get_settings().masked())


@_app.command("init")
def init() -> None:
    """Migrate the schema, create the object store and the signing key; safe to run again."""
    from api.cli.cmd_coverage import policy_step
    from storage.init import initialize

    settings = get_settings()
    for line in initialize(settings):
        common.out.print(line, highlight=False)
    common.out.print(policy_step(settings), highlight=False)


# The command modules that a command line's first word needs, where that is fewer than all: ``bwc ingest`` and
# ``bwc watch`` run once per file on a station, and importing every command (the audit, report and import code
# with them) costs more CPU than hashing a small file. Any other first word (help, a typo) imports them all.
# tests/api/cli/test_main.py checks that each module named here is the only one adding that word.
_ONLY: dict[str, tuple[str, ...]] = {"ingest": ("cmd_ingest",), "watch": ("cmd_ingest",)}
_registered: set[str] = set()


def _register(names: tuple[str, ...] | None = None) -> None:
    """Add the commands of the named ``cmd_*`` modules (all of them by default) to the program, each once."""
    import importlib
    import pkgutil

    import api.cli as pkg

    if names is None:
        names = tuple(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("cmd_"))
    for name in names:
        if name not in _registered:
            importlib.import_module(f"api.cli.{name}").register(_app)
            _registered.add(name)


def __getattr__(name: str) -> typer.Typer:
    """``app``: the program with every command, as help, the docs and the tests see it."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _register()
    return _app


LOG_FORMAT = "%(levelname)s %(name)s %(message)s"


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format=LOG_FORMAT)
    try:
        secrets = get_settings().secrets()
    except BwcError:
        secrets = set()  # bad settings: the command says so; URL passwords are still masked by their shape
    logs.mask_handlers(secrets, LOG_FORMAT)
    _register(_ONLY.get(sys.argv[1]) if len(sys.argv) > 1 else None)
    try:
        _app()
    except Exception as exc:  # raised outside any command (HandledGroup covers those): the same one line
        sys.exit(report(exc))
