"""One WSGI app for HTTP mode: Slack's requests at /slack/events, EVERY8D's callbacks, and the service paths
(/healthz, /readyz, /metrics: bot/health.py). In Socket Mode the same app serves the callback port.

Served by waitress (threads in one process): Bolt's built-in server is single-threaded with a tiny
backlog, and worker *processes* would each run a scheduler and sender.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from slack_bolt import App

from bot.callback_receiver import CallbackReceiver, StartResponse
from bot.push_lane import PushLane, install
from bot.slack_guard import slack_endpoint

if TYPE_CHECKING:
    from bot.health import ServiceEndpoints

SLACK_PATH = "/slack/events"


def build_wsgi_app(app: App | None, receiver: CallbackReceiver | None, service: ServiceEndpoints | None = None,
                   *, signing_secret: str | None = None):
    """`app` None: no Slack path (the callback port in Socket Mode). `service`: /healthz, /readyz and
    /metrics, and callbacks counted by answer; without it (older tests) /healthz alone answers.
    `signing_secret`: the one Slack signs with; by default the one the Bolt app verifies with, so the
    guard in front of Bolt (bot/slack_guard.py) and Bolt itself can never disagree."""
    secret = signing_secret if signing_secret is not None else getattr(app, "_signing_secret", "") or ""
    slack = slack_endpoint(app, secret) if app is not None else None

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if slack is not None and path == SLACK_PATH and environ.get("REQUEST_METHOD") == "POST":
            return slack(environ, start_response)
        if receiver is not None and CallbackReceiver.handles(path):
            if service is not None:
                return service.count_callback(receiver, environ, start_response)
            return receiver(environ, start_response)
        return _service_route(service, path, environ, start_response)

    if receiver is not None:
        application.push_lane = PushLane(receiver)  # type: ignore[attr-defined]  # read by serve_in_thread
    return application


def _service_route(service: ServiceEndpoints | None, path: str, environ: dict[str, Any],
                   start_response: StartResponse) -> Iterable[bytes]:
    """The service paths (health, readiness, metrics), else 404."""
    if service is not None and service.handles(path):
        return service(environ, start_response)
    if path == "/healthz":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"status": "alive"}']
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


def serve_in_thread(application, *, host: str, port: int, threads: int = 8, lane: PushLane | None = None):
    """Start waitress in a daemon thread; returns (server, port). Port 0 picks a free one. `lane`: EVERY8D's
    pushes answered by the server's loop thread (bot/push_lane.py); by default the one `build_wsgi_app`
    attached to the app when it has a callback receiver."""
    import threading

    from waitress.server import create_server

    lane = lane if lane is not None else getattr(application, "push_lane", None)
    extra: dict[str, Any] = {}
    if lane is not None:
        extra = install(lane)
        extra["_dispatcher"].set_thread_count(threads)
    channel_class = extra.pop("channel_class", None)
    server = create_server(application, host=host, port=port, threads=threads, ident="every8d-bot",
                           channel_timeout=30, **extra)
    if channel_class is not None:
        server.channel_class = channel_class
    # Named by the port it got (port 0 picks one): `stop_server` finds the thread by that name.
    thread = threading.Thread(target=server.run, name=f"http-{server.effective_port}", daemon=True)
    thread.start()
    return server, server.effective_port


def stop_server(server) -> None:
    """Stop a server started by `serve_in_thread`. `server.close()` alone closes its sockets under the
    loop's select() in the other thread, which then dies with EBADF; so empty the loop's map and wake
    it, let the loop end, and only then close."""
    import threading

    server._map.clear()
    try:
        server.pull_trigger()
    except OSError:  # the loop already ended and closed its trigger: nothing left to wake
        pass
    for thread in threading.enumerate():
        if thread.name == f"http-{server.effective_port}":
            thread.join(timeout=5)
    server.close()
    server.task_dispatcher.shutdown()
