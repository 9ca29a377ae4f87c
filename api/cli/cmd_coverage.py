"""``bwc coverage recompute``: relink and re-judge every action now, e.g. after a policy change (SPEC §6, §9)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

import typer
from sqlalchemy import func, select

from api.cli import common
from api.cli.common import Format, print_json, progress_bar
from audit.holds import apply_case_holds
from audit.policy import apply_policy
from config.settings import Settings
from storage.basics import utcnow
from storage.db import reading, transaction
from storage.models import Action

CLI_ACTOR = "cli"

coverage_app = typer.Typer(no_args_is_help=True, help="Coverage verdicts of enforcement actions.")


@coverage_app.command("recompute")
def recompute(fmt: Format = typer.Option(Format.table, "--format", help="table or json")) -> None:
    """Relink every action's recordings and recompute its verdict under the current policy."""
    rt = common.runtime()
    try:
        with reading(rt.sessions) as session:
            total = session.scalar(select(func.count(Action.id))) or 0
        with progress_bar("recomputing coverage", total) as advance:
            run = apply_policy(rt.sessions, rt.settings, utcnow(), CLI_ACTOR, advance, force=True)
        with transaction(rt.sessions) as session:
            apply_case_holds(session, rt.store, CLI_ACTOR)
    finally:
        rt.close()
    done = run.recomputed
    assert done is not None  # forced
    policy_changed = run.changed
    result = {"actions": done.actions, "verdicts_changed": done.verdicts_changed, "policy_changed": policy_changed}
    if fmt is Format.json:
        print_json(result)
        return
    note = " (policy change recorded)" if policy_changed else ""
    common.out.print(f"{done.actions} actions recomputed, {done.verdicts_changed} verdicts changed{note}")


def policy_step(settings: Settings) -> str:
    """For ``bwc init`` and ``bwc run``: record a changed coverage policy and recompute under it; one line."""
    rt = common.runtime(settings)
    try:
        with reading(rt.sessions) as session:
            total = session.scalar(select(func.count(Action.id))) or 0
        with ExitStack() as stack:
            bar: Callable[[int], None] | None = None

            def advance(n: int) -> None:  # the bar appears only once there is something to recompute
                nonlocal bar
                if bar is None:
                    bar = stack.enter_context(progress_bar("recomputing coverage (policy changed)", total))
                bar(n)

            run = apply_policy(rt.sessions, settings, utcnow(), CLI_ACTOR, advance)
        if run.recomputed is not None:
            with transaction(rt.sessions) as session:
                apply_case_holds(session, rt.store, CLI_ACTOR)  # recordings newly linked to a held case
    finally:
        rt.close()
    if run.recomputed is None:
        return "coverage policy: up to date"
    what = "an interrupted recompute finished" if run.resumed else "changed"
    return f"coverage policy: {what}, {run.recomputed.actions} actions recomputed"


def register(app: typer.Typer) -> None:
    app.add_typer(coverage_app, name="coverage")
