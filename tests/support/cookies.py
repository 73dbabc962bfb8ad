"""Cookie files as clients upload them, and a search of a whole database for a secret."""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from tests.support.media_server import MEMBER_COOKIE

DAY = 86_400


def line(
    domain: str,
    name: str,
    value: str,
    *,
    expires: float | None = None,
    subdomains: bool | None = None,
    path: str = "/",
) -> str:
    """One Netscape cookie line (a day from now unless ``expires`` says otherwise)."""
    flag = domain.startswith(".") if subdomains is None else subdomains
    when = int(time.time() + DAY if expires is None else expires)
    fields = [domain, "TRUE" if flag else "FALSE", path, "FALSE", str(when), name, value]
    return "\t".join(fields)


def netscape(*lines: str) -> bytes:
    return ("# Netscape HTTP Cookie File\n\n" + "\n".join(lines) + "\n").encode()


def member_file(host: str = "127.0.0.1") -> bytes:
    """The cookie file that gets past the media server's ``/members/…`` wall."""
    return netscape(line(host, *MEMBER_COOKIE))


def places_holding(database_url: str, needle: str) -> list[str]:
    """Every ``table.column`` of the public schema with a row whose value, as text,
    contains ``needle`` (every column of every table, whatever its type)."""
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    found: list[str] = []
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        ).fetchall()
        for table, column in columns:
            query = sql.SQL("SELECT 1 FROM {} WHERE strpos({}::text, %s) > 0 LIMIT 1").format(
                sql.Identifier(table), sql.Identifier(column)
            )
            if conn.execute(query, (needle,)).fetchone():
                found.append(f"{table}.{column}")
    return found
