"""The ``bwc`` program: one Typer app, a module per command group."""

from __future__ import annotations

import logging
import sys

import typer

from api.cli import common
from api.cli.common import EXIT_USAGE, err, print_json
from config.errors import BwcError
from config.settings import get_settings

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="BWC Evidence: body-worn-camera evidence service.",
    pretty_exceptions_show_locals=False,  # locals may hold secrets (database URL, tokens)
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


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    try:
        app()
    except BwcError as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        sys.exit(EXIT_USAGE)
    except OSError as exc:
        # The machine said no (a folder that cannot be made, a file that cannot be read): say what, briefly.
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(EXIT_USAGE)
