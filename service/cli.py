"""The ``haul`` command: ``haul migrate``, ``haul clients create NAME [--admin]``, list, revoke,
rotate-secret, limits; ``haul cookies rotate``; ``haul ytdlp update``; ``haul doctor``;
``haul queues`` (what a worker consumes); and for ``just run``, ``haul logs`` and ``haul banner``.

What a script needs goes to stdout, one value per line (or one JSON object with
``--json``); what a person should read goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from dataclasses import asdict
from typing import TYPE_CHECKING

from service.settings import get_settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.runtime import Runtime


def _migrate(_: argparse.Namespace) -> int:
    from service.db.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url, settings.migrations_dir)
    print("database is at the newest schema")
    return 0


def _runtime() -> Runtime:
    from service.runtime import build_runtime

    return build_runtime(get_settings())


def _create(args: argparse.Namespace) -> int:
    from service.errors import InvalidInput
    from service.intake.clients import create_client
    from service.webhooks.endpoints import check_url, set_default_endpoint

    rt = _runtime()
    if args.callback_url is not None:
        try:
            check_url(rt, args.callback_url)
        except InvalidInput as exc:
            print(exc.message, file=sys.stderr)
            return 2
    client, key = create_client(rt, args.name, admin=args.admin, tier=args.tier)
    if args.callback_url is not None:
        set_default_endpoint(rt, client, args.callback_url)
    if args.json:
        print(
            json.dumps(
                {
                    "id": str(client.id),
                    "name": client.name,
                    "key": key,
                    "webhook_secret": client.webhook_secret,
                }
            )
        )
        return 0
    print(
        f"created client {client.name} ({client.id}){' with admin scope' if args.admin else ''}",
        file=sys.stderr,
    )
    print(
        "shown once, store them now: the API key (line 1) and the webhook signing secret (line 2)",
        file=sys.stderr,
    )
    print(key)
    print(client.webhook_secret)
    return 0


def _rotate_secret(args: argparse.Namespace) -> int:
    from service.errors import HaulError
    from service.intake.clients import rotate_secret

    try:
        client, secret = rotate_secret(_runtime(), args.client, grace=not args.no_grace)
    except HaulError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    grace = get_settings().webhook_secret_grace_s
    old = (
        "the old secret stopped signing"
        if args.no_grace
        else f"the old secret also signs for {grace} s (HAUL_WEBHOOK_SECRET_GRACE_S)"
    )
    print(f"new webhook secret for {client.name} ({client.id}), shown once; {old}", file=sys.stderr)
    print(secret)
    return 0


#: Each limit `haul clients limits` sets, with its smallest value (a rate of 0 means nothing).
LIMITS = {
    "max_active_jobs": 0,
    "storage_quota_bytes": 0,
    "requests_per_minute": 1,
    "max_subscriptions": 0,
    "max_running": 1,
}


def _limit_value(minimum: int) -> Callable[[str], int | None]:
    """A limit on the command line: a whole number, or ``default`` for the HAUL_CLIENT_* one."""

    def parse(text: str) -> int | None:
        if text == "default":
            return None
        value = int(text)
        if value < minimum:
            raise ValueError(text)
        return value

    parse.__name__ = f"number ≥ {minimum} or 'default'"
    return parse


def _limits(args: argparse.Namespace) -> int:
    from service.db.clients import own_limits
    from service.errors import HaulError
    from service.intake.clients import find_one, limits_of, set_limits

    changes = {name: getattr(args, name) for name in LIMITS if hasattr(args, name)}
    rt = _runtime()
    try:
        client = set_limits(rt, args.client, **changes) if changes else find_one(rt, args.client)
    except HaulError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    own = own_limits(client)
    held = limits_of(rt.settings, client)
    if args.json:
        print(json.dumps({"id": str(client.id), "name": client.name, **asdict(held)}))
        return 0
    print(f"limits of {client.name} ({client.id}):", file=sys.stderr)
    for name in LIMITS:
        value = getattr(held, name)
        source = "own" if getattr(own, name) is not None else f"HAUL_CLIENT_{name.upper()}"
        shown = "unlimited" if value is None else str(value)
        print(f"{name:20} {shown:>14}  ({source})")
    return 0


def _list(_: argparse.Namespace) -> int:
    from service.db import clients as client_rows

    with _runtime().db.session() as session:
        for c in client_rows.list_all(session):
            state = "revoked" if c.revoked_at else "active"
            print(f"{c.id}  {c.key_prefix}…  {state:8}  {','.join(c.scopes) or '-':6}  {c.name}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from service.db import clients as client_rows

    with _runtime().db.session() as session:
        done = client_rows.revoke(session, uuid.UUID(args.client_id))
    print("revoked" if done else "no such active client", file=sys.stderr)
    return 0 if done else 1


def _rotate_cookies(_: argparse.Namespace) -> int:
    from service.domain.sealing import Unsealable
    from service.intake import cookies

    try:
        done = cookies.rotate(_runtime())
    except Unsealable:
        print(
            "a site's cookies open under neither HAUL_SECRET_KEY nor HAUL_OLD_SECRET_KEYS; "
            "nothing was changed",
            file=sys.stderr,
        )
        return 1
    print(done)
    print(f"{done} sites' cookies sealed under the current HAUL_SECRET_KEY", file=sys.stderr)
    return 0


def _ytdlp_update(args: argparse.Namespace) -> int:
    from service.domain.ytdlp import BadTarget, Target
    from service.fleet.upgrade import update

    try:
        target = Target.parse(args.channel)
    except BadTarget as exc:
        print(f"haul ytdlp update: {exc}", file=sys.stderr)
        return 2
    done = update(get_settings(), target, sys.stderr, reload=not args.no_reload, wait=args.wait)
    if done.version is not None:
        print(done.version)
    return 0 if done.ok else 1


def _doctor(args: argparse.Namespace) -> int:
    from service.observe import doctor

    findings = doctor.run(get_settings(), args.checks)
    for finding in findings:
        if not args.quiet or finding.status == "FAIL":
            print(finding.line() if not args.quiet else f"haul: {finding.detail}; {finding.fix}")
    return 1 if any(f.status == "FAIL" for f in findings) else 0


def _logs(args: argparse.Namespace) -> int:
    from service.observe.logs import relay

    as_json = bool(get_settings().log_json)  # readable unless HAUL_LOG_JSON=true
    try:
        relay(sys.stdin, sys.stdout, args.role, as_json=as_json)
    except (BrokenPipeError, KeyboardInterrupt):
        return 0
    return 0


def _banner(args: argparse.Namespace) -> int:
    """Wait for the API, then print the block ``just run`` ends its start-up with.

    On stdout, which ``just run`` leaves on the terminal: the first admin key it may
    show is never written to a log.
    """
    import httpx

    from service.intake.clients import create_first_admin

    api = args.api.rstrip("/")

    def answers(path: str) -> httpx.Response | None:
        try:
            return httpx.get(api + path, timeout=2)
        except httpx.HTTPError:
            return None

    deadline = time.monotonic() + args.wait
    while (ready := answers("/health/ready")) is None or ready.status_code != 200:
        if time.monotonic() > deadline:
            print(
                f"haul: {api}/health/ready did not answer 200 in {args.wait:.0f} s; "
                "see the lines above",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.25)
    home = answers("/")
    dashboard = home is not None and home.headers.get("content-type", "").startswith("text/html")
    first = create_first_admin(_runtime())
    print(welcome(api, None if first is None else first[1], demo=args.demo, dashboard=dashboard))
    return 0


def welcome(api: str, key: str | None, *, demo: str | None, dashboard: bool) -> str:
    """The first-run banner: where haul answers, a key (or how to make one), a curl line."""
    auth = f'-H "Authorization: Bearer {key or "$KEY"}"'
    rows = [("API", f"{api}  (OpenAPI: {api}/schema)")]
    if dashboard:
        rows.append(("dashboard", f"{api}/"))
    if key:
        rows.append(("admin key", f"{key}  (client 'admin', made now; shown only this once)"))
    else:
        rows.append(("a key", ".venv/bin/haul clients create NAME   (then: export KEY=haul_…)"))
    if demo:
        body = json.dumps({"url": f"{demo}/media/clip.mp4"})
        rows.append(
            ("demo media", f"{demo}/media/clip.mp4 (3 s clip), {demo}/feed.rss (3 entries)")
        )
        rows.append(
            (
                "try it",
                f"curl -s -X POST {api}/v1/jobs {auth} "
                f"-H 'Content-Type: application/json' -d '{body}'",
            )
        )
    rows.append(("jobs", f"curl -s {api}/v1/jobs {auth}"))
    if not demo:
        rows.append(("offline", "sh infra/just.sh demo   (serves a sample clip haul may fetch)"))
    rule = "─" * 72
    lines = [rule, "haul is running; Ctrl-C stops it.", *(f"  {a:<11} {b}" for a, b in rows), rule]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="haul", description="haul administration")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "migrate", help="create the database if needed and apply migrations"
    ).set_defaults(run=_migrate)
    clients = sub.add_parser("clients", help="manage API clients").add_subparsers(
        dest="action", required=True
    )
    create = clients.add_parser("create", help="create a client and print its key once")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="allow queue control")
    create.add_argument("--tier", default="standard")
    create.add_argument(
        "--callback-url", help="default webhook endpoint for jobs without their own callback_url"
    )
    create.add_argument(
        "--json", action="store_true", help="print id, name, key and webhook_secret as JSON"
    )
    create.set_defaults(run=_create)
    clients.add_parser("list", help="list clients").set_defaults(run=_list)
    revoke = clients.add_parser("revoke", help="revoke a client's key")
    revoke.add_argument("client_id")
    revoke.set_defaults(run=_revoke)
    rotate = clients.add_parser(
        "rotate-secret", help="give a client a new webhook signing secret and print it once"
    )
    rotate.add_argument("client", help="the client's name or id")
    rotate.add_argument(
        "--no-grace",
        action="store_true",
        help="stop signing with the old secret at once (it leaked)",
    )
    rotate.set_defaults(run=_rotate_secret)
    limits = clients.add_parser(
        "limits",
        help="show a client's limits, or give it its own (a number, or 'default' for the "
        "HAUL_CLIENT_* setting)",
    )
    limits.add_argument("client", help="the client's name or id")
    for name, minimum in LIMITS.items():
        limits.add_argument(
            f"--{name.replace('_', '-')}",
            type=_limit_value(minimum),
            default=argparse.SUPPRESS,
            metavar="N|default",
        )
    limits.add_argument("--json", action="store_true", help="print the limits that hold as JSON")
    limits.set_defaults(run=_limits)
    _operator_commands(sub)
    return p


def _check_name(name: str) -> str:
    from service.observe.doctor import CHECKS

    if name not in CHECKS:
        raise argparse.ArgumentTypeError(f"no check {name!r}; the checks: {', '.join(CHECKS)}")
    return name


def _operator_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from service.observe.doctor import CHECKS

    doctor = sub.add_parser(
        "doctor", help="check this machine and configuration; a line each, with a fix"
    )
    doctor.add_argument(
        "checks",
        nargs="*",
        type=_check_name,
        metavar="CHECK",
        help=f"only these: {', '.join(CHECKS)}",
    )
    doctor.add_argument("--quiet", action="store_true", help="print failures only")
    doctor.set_defaults(run=_doctor)
    cookies = sub.add_parser("cookies", help="clients' cookies per site").add_subparsers(
        dest="cookies_command", required=True
    )
    cookies.add_parser(
        "rotate",
        help="seal every client's cookies again under HAUL_SECRET_KEY (after a key rotation "
        "that kept the old key in HAUL_OLD_SECRET_KEYS)",
    ).set_defaults(run=_rotate_cookies)
    ytdlp = sub.add_parser("ytdlp", help="this host's yt-dlp").add_subparsers(
        dest="ytdlp_command", required=True
    )
    update = ytdlp.add_parser(
        "update", help="pip-install a yt-dlp here, then reload this host's workers gracefully"
    )
    update.add_argument("--channel", default="stable", metavar="stable|nightly|VERSION")
    update.add_argument("--no-reload", action="store_true", help="install only")
    update.add_argument("--wait", type=float, default=600.0, help="seconds to await the reload")
    update.set_defaults(run=_ytdlp_update)
    logs = sub.add_parser("logs", help="show haul's JSON log lines on stdin readable")
    logs.add_argument("--role", default="-", help="role of lines that do not name one")
    logs.set_defaults(run=_logs)
    banner = sub.add_parser("banner", help="wait for the API, then print how to use it (just run)")
    banner.add_argument("--api", required=True, help="the API's base URL")
    banner.add_argument("--demo", help="base URL of the demo media server, if one runs")
    banner.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the API")
    banner.set_defaults(run=_banner)
    queues = sub.add_parser(
        "queues",
        help="print the queues a worker consumes: dramatiq actors -Q $(haul queues …)",
    )
    which = queues.add_mutually_exclusive_group()
    which.add_argument("--only", nargs="+", type=_queue_name, metavar="QUEUE")
    which.add_argument("--except", dest="exclude", nargs="+", type=_queue_name, metavar="QUEUE")
    queues.set_defaults(run=_queues)


def _queue_name(text: str) -> str:
    from service.dispatch import Queue

    if text not in {q.value for q in Queue}:
        names = ", ".join(q.value for q in Queue)
        raise argparse.ArgumentTypeError(f"no queue {text!r}; the queues: {names}")
    return text


def _queues(args: argparse.Namespace) -> int:
    from service.dispatch import Queue, consumed_queues

    names = consumed_queues(
        get_settings(),
        only=[Queue(q) for q in args.only or ()],
        exclude=[Queue(q) for q in args.exclude or ()],
    )
    if not names:
        # `dramatiq actors -Q` with no names consumes every queue: never print none.
        print("haul queues: that leaves no queue to consume", file=sys.stderr)
        return 2
    print(" ".join(names))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from service.logging import configure_logging

    configure_logging(get_settings())  # log lines go to stderr; stdout is for values
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
