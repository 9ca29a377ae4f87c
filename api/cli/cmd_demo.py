"""``bwc demo``: fill the embedded default (or ``BWC_HOME``) with a small true city and print a sign-in."""

from __future__ import annotations

import sys

import typer

from api.cli.common import err
from config.settings import get_settings


def demo() -> None:
    """Make a few units, officers, cameras, clips (ffmpeg) and actions; print a reviewer token on stdout."""
    from api.demo import fill

    settings = get_settings()
    err.print(f"filling {settings.home} with the demo city (clips made by ffmpeg, ingested for real)…", highlight=False)
    city = fill(settings)
    sys.stdout.write(city.token + "\n")
    sys.stdout.flush()
    err.print(
        f"{city.recordings} clips, actions {', '.join(city.actions)}. Start `bwc run`, open "
        f"http://{settings.host}:{settings.port}/login and paste the token above (a reviewer's; it is not kept).",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
