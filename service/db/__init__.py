"""Persistence: the engine, the SQLModel tables and the queries, split by kind.

``jobs`` (rows in and out), ``transitions`` (guarded state changes), ``trees``
(playlists, in the one lock order), ``replay``, ``finders`` (the sweeps' queries),
``control`` (the claim gate, holds), and one module per other table. Only this
package imports sqlmodel/SQLAlchemy; everything here is PostgreSQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # The one name of a database session for code outside this package, imported
    # under TYPE_CHECKING there (``from service.db import Session``): the use cases
    # pass sessions through without importing sqlmodel themselves.
    from sqlmodel import Session as Session
