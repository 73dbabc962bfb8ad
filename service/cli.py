"""The ``haul`` command: ``haul migrate``, ``haul clients create NAME [--admin]``, list, revoke."""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import TYPE_CHECKING

from service.settings import get_settings

if TYPE_CHECKING:
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
    from service.clients import create_client

    client, key = create_client(_runtime(), args.name, admin=args.admin, tier=args.tier)
    print(
        f"created client {client.name} ({client.id}){' with admin scope' if args.admin else ''}",
        file=sys.stderr,
    )
    print("the key below is shown once; store it now", file=sys.stderr)
    print(key)
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
    create.set_defaults(run=_create)
    clients.add_parser("list", help="list clients").set_defaults(run=_list)
    revoke = clients.add_parser("revoke", help="revoke a client's key")
    revoke.add_argument("client_id")
    revoke.set_defaults(run=_revoke)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
