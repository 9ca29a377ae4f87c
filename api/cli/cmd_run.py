"""``bwc run``: the API, the web pages and the inbox watcher in one process (SPEC §3, §7)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Annotated

import typer

from api.cli.common import err
from config import logs
from config.settings import Settings, get_settings

log = logging.getLogger(__name__)

WATCHER_JOIN_SECONDS = 30.0
WORKER_HEALTHCHECK_SECONDS = 30


def run(
    host: Annotated[str | None, typer.Option(help="address to listen on (default BWC_HOST)")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="port (default BWC_PORT)")] = None,
    watch: Annotated[bool, typer.Option(help="also watch the inbox (--no-watch: an API-only replica)")] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="processes serving HTTP (uvicorn workers, one port); the watcher, fixity, housekeeping and "
            "checkpoints still run once, in the parent. More than 1 uses more of the machine's cores.",
        ),
    ] = 1,
) -> None:
    """Set up (like ``bwc init``), then serve the API and web pages and watch BWC_INBOX until SIGINT/SIGTERM."""
    from api.cli.cmd_coverage import policy_step
    from storage.init import initialize

    settings = get_settings()
    logs.set_level(settings.log_level)
    for line in initialize(settings):
        err.print(line, highlight=False)
    err.print(policy_step(settings), highlight=False)
    serve(settings, host or settings.host, port or settings.port, watch=watch, workers=workers)


def _http(settings: Settings, host: str, port: int, workers: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """How to serve HTTP and how to stop it: uvicorn in this thread, or (``workers`` > 1) uvicorn's supervisor
    here with its worker processes on one shared socket, each building the app from the environment."""
    import uvicorn

    level = settings.log_level.lower()
    access_log = settings.access_log
    # proxy_headers off: whose X-Forwarded-* headers count is BWC_TRUSTED_PROXIES, decided in one place
    if workers == 1:
        from api.app import create_app  # the web stack loads only for this command

        app = create_app(settings)
        server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level=level, proxy_headers=False, access_log=access_log)
        )

        def halt() -> None:
            server.should_exit = True

        return server.run, halt
    from uvicorn.supervisors import Multiprocess

    # A worker is a fresh (spawned) process: it reads its settings from the same environment as this one.
    config = uvicorn.Config(
        "api.app:create_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level=level,
        access_log=access_log,
        proxy_headers=False,
        # a worker still importing the app on a busy machine can miss uvicorn's 5 s health ping and be killed
        # and respawned again and again (the likely reason a 2-worker start never answered at load 13 on 2
        # cores): a hung worker is one silent for 30 s
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])  # SIGINT/SIGTERM: its own handlers
    return supervisor.run, supervisor.should_exit.set


def serve(settings: Settings, host: str, port: int, *, watch: bool = True, workers: int = 1) -> None:
    """Serve HTTP in this (main) thread and run the watcher beside it; both stop on the first signal."""
    if workers < 1:
        raise typer.BadParameter(f"--workers must be at least 1, not {workers}")
    stop = threading.Event()
    failed = threading.Event()
    run_http, halt = _http(settings, host, port, workers)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # uvicorn swaps in its own handlers while serving and hands the signal back to this one afterwards.
        stop.set()
        halt()

    if workers == 1:  # (the supervisor of several workers has installed its own, which end its run)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
    fixity_thread = threading.Thread(target=_fixity, args=(settings, stop), name="bwc-fixity", daemon=True)
    fixity_thread.start()
    housekeeping_thread = threading.Thread(
        target=_housekeeping, args=(settings, stop), name="bwc-housekeeping", daemon=True
    )
    housekeeping_thread.start()
    checkpointer = _start_checkpointer(settings, stop)
    watcher_thread = None
    if watch:
        watcher_thread = threading.Thread(
            target=_watch, args=(settings, stop, failed, halt), name="bwc-watcher", daemon=True
        )
        watcher_thread.start()
    try:
        run_http()
    finally:
        stop.set()
        fixity_thread.join(WATCHER_JOIN_SECONDS)
        housekeeping_thread.join(WATCHER_JOIN_SECONDS)
        if watcher_thread is not None:
            watcher_thread.join(WATCHER_JOIN_SECONDS)
            if watcher_thread.is_alive():
                log.error("run.watcher_still_running after %.0fs; exiting anyway", WATCHER_JOIN_SECONDS)
        if checkpointer is not None:
            checkpointer.join(WATCHER_JOIN_SECONDS)
    if failed.is_set():
        raise typer.Exit(1)


def _start_checkpointer(settings: Settings, stop: threading.Event) -> threading.Thread | None:
    """The audit checkpointer beside the server; without a signing key the service runs and says so loudly."""
    from audit.checkpointer import run_checkpointer
    from audit.signing import SigningKeyError, load_signer
    from storage.runtime import build_runtime

    try:
        signer = load_signer(settings)
    except SigningKeyError as exc:
        log.error("run.no_audit_checkpoints %s", exc.message)
        return None
    rt = build_runtime(settings)

    def loop() -> None:
        try:
            run_checkpointer(rt.sessions, signer, stop, settings.checkpoint_seconds)
        finally:
            rt.close()

    thread = threading.Thread(target=loop, name="bwc-checkpointer", daemon=True)
    thread.start()
    return thread


def _watch(settings: Settings, stop: threading.Event, failed: threading.Event, halt: Callable[[], None]) -> None:
    from ingest.service import local_watcher
    from storage.runtime import build_runtime

    rt = build_runtime(settings)
    try:
        local_watcher(rt, settings.inbox_path, settings.station).run(stop)
    except Exception:
        # A service that silently stopped ingesting would lose files: take the whole process down, loudly.
        log.exception("run.watcher_crashed inbox=%s", settings.inbox_path)
        failed.set()
        halt()
    finally:
        rt.close()


def _fixity(settings: Settings, stop: threading.Event) -> None:
    """The scheduled fixity sample (``fixity_sample_per_hour``): a few objects an hour, least recently checked first."""
    from audit.fixity import sample_forever
    from storage.runtime import build_runtime

    rt = build_runtime(settings)
    try:
        sample_forever(rt.sessions, rt.store, settings, stop)
    finally:
        rt.close()


def _housekeeping(settings: Settings, stop: threading.Event) -> None:
    """Expired pending verdicts re-judged (their findings open), dead web sessions and viewings purged."""
    from api.housekeeping import housekeep_forever
    from storage.runtime import build_runtime

    rt = build_runtime(settings)
    try:
        housekeep_forever(rt.sessions, settings, stop)
    finally:
        rt.close()


def register(app: typer.Typer) -> None:
    app.command("run")(run)
