"""Persistence: the engine, the SQLModel tables and the queries, split by kind.

``jobs`` (rows in and out), ``transitions`` (guarded state changes), ``trees``
(playlists, in the one lock order), ``replay``, ``finders`` (the sweeps' queries),
``control`` (the claim gate, holds), and one module per other table. Only this
package imports sqlmodel/SQLAlchemy; everything here is PostgreSQL.
"""
