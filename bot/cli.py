"""`every8d-bot`: run the bot, the sandbox, the local console, or the configuration doctor.

    every8d-bot run [--http --port N]   Socket Mode when SLACK_APP_TOKEN is set; HTTP mode with --http
    every8d-bot sandbox [--port N]      the built-in EVERY8D sandbox, for people and scripts
    every8d-bot console [--script F]    the real app with Slack stood in locally (no workspace needed)
    every8d-bot doctor                  check a deployment's configuration end to end
    every8d-bot backup PATH             a consistent copy of the database, while the bot runs
    every8d-bot restore PATH            put a backup back (bot stopped; the current file is kept aside)
    every8d-bot repost                  queue again the Slack posts set aside (after fixing what Slack refused)

A configuration problem is one clear message naming what to set, and exit code 2; never a stack trace.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from bot.config import Config, ConfigError
from storage import StorageError

log = logging.getLogger("every8d_bot")

EXIT_CONFIG = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="every8d-bot", description="Send SMS and MMS through EVERY8D from Slack.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the bot (Socket Mode, or HTTP with --http)")
    run.add_argument("--http", action="store_true", help="serve Slack's requests over HTTP at /slack/events")
    run.add_argument("--port", type=int, default=3000, help="HTTP port (default 3000)")
    run.add_argument("--host", default="0.0.0.0", help="HTTP address to listen on (default 0.0.0.0)")
    sandbox = sub.add_parser("sandbox", help="run the built-in EVERY8D sandbox server")
    sandbox.add_argument("--port", type=int, default=8008)
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--credit", type=float, default=1000.0)
    sandbox.add_argument("--seed", type=int, default=0)
    sandbox.add_argument("--mms-terms", choices=("2017", "2021"), default="2021",
                         help="MMS terms the sandbox charges and checks (as EVERY8D_MMS_TERMS; default 2021)")
    console = sub.add_parser("console", help="try the bot locally: a terminal stands in for Slack")
    console.add_argument("--script", help="run the lines of FILE instead of a prompt; exit non-zero on a failed step")
    sub.add_parser("doctor", help="check the configuration, tokens, scopes, channels and EVERY8D account")
    backup = sub.add_parser("backup", help="write a consistent copy of the database (safe while the bot runs)")
    backup.add_argument("path", help="the backup file to write (or a folder: a dated file is made in it)")
    restore = sub.add_parser("restore", help="put a backup back in place of the database (stop the bot first)")
    restore.add_argument("path", help="the backup file to restore")
    sub.add_parser("repost", help="queue again the Slack posts set aside after a permanent refusal (safe while "
                   "the bot runs: it posts them within seconds)")
    args = parser.parse_args(argv)

    try:
        if args.command == "run":
            return _run(args)
        if args.command == "sandbox":
            from every8d.sandbox import run_forever

            run_forever(host=args.host, port=args.port, credit=args.credit, seed=args.seed,
                        mms_terms=args.mms_terms)
            return 0
        if args.command == "console":
            from bot.console import run_console

            return run_console(script=args.script)
        if args.command == "doctor":
            from bot.doctor import run_doctor

            return run_doctor()
        if args.command in ("backup", "restore"):
            return _backup_or_restore(args.command, args.path)
        if args.command == "repost":
            return _repost()
    except ConfigError as exc:
        _say_config_problems(exc.problems)
        return EXIT_CONFIG
    except StorageError as exc:
        print(f"every8d-bot: {exc} → 請讓 BOT_DB_PATH 指向可寫入的檔案 / make BOT_DB_PATH a writable file "
              "(free disk space, fix permissions or a read-only mount).", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    return 0


def _backup_or_restore(command: str, path: str) -> int:
    """`backup PATH` / `restore PATH` against BOT_DB_PATH; exit 1 with one clear message when refused."""
    from bot.backup import BackupError, backup, restore

    config = Config.from_env()
    try:
        if command == "backup":
            done = backup(config.db_path, path)
            print(f"已備份 / backed up {config.db_path} → {done.path} ({done.requests} requests, "
                  f"schema {done.migrations[-1]})")
        else:
            done = restore(path, config.db_path)
            aside = f"; the previous file is kept as {done.kept_aside}" if done.kept_aside else ""
            print(f"已還原 / restored {path} → {done.path} ({done.requests} requests, "
                  f"schema {done.migrations[-1]}){aside}")
    except BackupError as exc:
        print(f"every8d-bot {command}: {exc}", file=sys.stderr)
        return 1
    return 0


def _repost() -> int:
    """`repost`: the posts Slack refused for good (the alert channel said which) go back in the queue."""
    from services.watchdog import repost_set_aside
    from storage import Store

    config = Config.from_env()
    store = Store(config.db_path)
    try:
        count = repost_set_aside(store)
    finally:
        store.close()
    print(f"已重新排入 {count} 則訊息 / {count} post(s) queued again: the running bot posts them within seconds.")
    return 0


def _say_config_problems(problems: list[str]) -> None:
    print("every8d-bot: 設定有誤，請修正後再啟動 / the configuration needs fixing:", file=sys.stderr)
    for problem in problems:
        print(f"  • {problem}", file=sys.stderr)
    print("  (see the configuration table in README.md; values may also go in a .env file)", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from bot.logs import setup_logging
    from bot.runtime import Runtime
    from bot.wsgi import build_wsgi_app

    config = Config.from_env()
    config.require_for_run(http=args.http)
    setup_logging(config.log_level, [config.every8d_pwd, config.slack_signing_secret, config.callback_token],
                  config.log_format)
    callback_url = None
    if config.callback_token:
        port = args.port if args.http else config.callback_port
        callback_url = f"http://127.0.0.1:{port}/every8d/callback/{config.callback_token}"
    runtime = Runtime(config, callback_url=callback_url)
    runtime.start()
    stop = threading.Event()

    def on_sigterm(*_: object) -> None:
        """`docker stop`/systemd: stop like Ctrl-C. The main thread only waits for this event (the servers
        run in threads), so the handler just sets it; a second SIGTERM changes nothing."""
        stop.set()

    signal.signal(signal.SIGTERM, on_sigterm)
    servers: list = []
    socket_handler = None
    try:
        from bot.wsgi import serve_in_thread

        if args.http:
            server, _ = serve_in_thread(build_wsgi_app(runtime.app, runtime.receiver, runtime.endpoints),
                                        host=args.host, port=args.port, threads=config.http_threads)
            servers.append(server)
            log.info("HTTP mode: Slack requests at http://%s:%d/slack/events", args.host, args.port)
        else:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            # The callback port also serves /healthz, /readyz and /metrics (orchestrators need a port
            # even when EVERY8D's callbacks are off).
            receiver = runtime.receiver if config.callback_token else None
            server, _ = serve_in_thread(build_wsgi_app(None, receiver, runtime.endpoints), host="0.0.0.0",
                                        port=config.callback_port, threads=4)
            servers.append(server)
            log.info("health, readiness and metrics%s on port %d",
                     " and EVERY8D callbacks" if receiver else "", config.callback_port)
            socket_handler = SocketModeHandler(runtime.app, config.slack_app_token)
            socket_handler.connect()
            log.info("Socket Mode: connected; press Ctrl-C to stop")
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
        runtime.shutdown(stop_serving=lambda: _stop_serving(servers, socket_handler))
    return 0


def _stop_serving(servers: list, socket_handler: object | None) -> None:
    """Stop taking requests, once the work in flight is done and before the database closes. Until then
    the ports keep answering: `/readyz` says "shutting down", callbacks are still stored."""
    from bot.wsgi import stop_server

    if socket_handler is not None:
        socket_handler.close()  # type: ignore[attr-defined]
    for server in servers:
        stop_server(server)


if __name__ == "__main__":
    sys.exit(main())
