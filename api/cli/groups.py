"""Typer groups shared by several command modules, so that each module adds its own commands to one group."""

from __future__ import annotations

import typer

actions_app = typer.Typer(no_args_is_help=True, help="Enforcement actions: import, show, link by hand.")


def add_once(app: typer.Typer, group: typer.Typer, name: str) -> None:
    """Add ``group`` to ``app`` under ``name`` unless another module already did."""
    if any(info.typer_instance is group for info in app.registered_groups):
        return
    app.add_typer(group, name=name)
