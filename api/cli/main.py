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


app = typer.Typer(
    cls=HandledGroup,
    no_args_is_help=True,
    add_completion=False,
    help="BWC Evidence: body-worn-camera evidence service.",
    pretty_exceptions_enable=False,  # a pretty traceback shows code and locals, which may hold secrets
)
config_app = typer.Typer(no_args_is_help=True, help="Settings.")
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings (secrets masked) as JSON."""
    print_json(get_settings().masked())


@app.command("init")
def init() -> None:
    """Migrate the schema, create the object store and the signing key; safe to run again."""
    from api.cli.cmd_coverage import policy_step
    from storage.init import initialize

    settings = get_settings()
    for line in initialize(settings):
        common.out.print(line, highlight=False)
    common.out.print(policy_step(settings), highlight=False)


def _register() -> None:
    # Each group lives in its own module; importing it adds its commands to ``app``.
    import importlib
    import pkgutil

    import api.cli as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("cmd_"):
            module = importlib.import_module(f"api.cli.{mod.name}")
            module.register(app)


_register()


LOG_FORMAT = "%(levelname)s %(name)s %(message)s"


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format=LOG_FORMAT)
    try:
        secrets = get_settings().secrets()
    except BwcError:
        secrets = set()  # bad settings: the command says so; URL passwords are still masked by their shape
    logs.mask_handlers(secrets, LOG_FORMAT)
    try:
        app()
    except Exception as exc:  # raised outside any command (HandledGroup covers those): the same one line
        sys.exit(report(exc))
