"""What every query on `jobs` shares: the database clock, ids bound as one array, and
the rows as an UPDATE … RETURNING left them; and for the hot paths' Core statements,
a plain row made into a model object without an ORM session, and a new model object
made without its constructor's per-field work."""

from __future__ import annotations

import copy
from enum import Enum
from functools import cache, partial
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import configure_mappers, make_transient_to_detached

from service.db.models import Job

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlmodel import Session, SQLModel

M = TypeVar("M", bound="SQLModel")


#: The database's clock: the one clock the whole fleet shares.
NOW = sa.func.now


#: Ids bound as one array parameter, however many there are.
UUIDS = ARRAY(sa.Uuid)


#: Every column of ``jobs``, for statements that return whole rows as plain rows.
JOB_COLUMNS = tuple(Job.__table__.c)

#: Column name -> attribute name (``metadata`` is ``Job.user_metadata``).
_ATTRIBUTES = {
    column.name: attr.key for attr in sa.inspect(Job).column_attrs for column in attr.columns
}


def job_of(row: Any) -> Job:
    """A plain row of :data:`JOB_COLUMNS` (other columns beside them are left out) as a
    detached ``Job``, made as :func:`detached` makes one: no session, no identity map, no
    constructor (the hot paths skip the ORM's loading machinery)."""
    mapping = row._mapping
    obj: Job = _job_manager().new_instance()
    values = obj.__dict__
    for name, key in _ATTRIBUTES.items():
        if name in mapping:
            values[key] = mapping[name]
    make_transient_to_detached(obj)
    return obj


@cache
def _job_manager() -> Any:
    """``Job``'s class manager, once the mappers are configured (as :func:`attribute_names`)."""
    configure_mappers()
    return sa.inspect(Job).class_manager


def returning_all(session: Session, stmt: Any) -> list[Job]:
    """The rows as the UPDATE left them, as detached ``Job`` objects made from plain rows
    (:func:`job_of`): the ORM neither loads them into the session nor synchronizes it, so
    a ``Job`` the session read before the UPDATE keeps what it read; use the returned rows.
    The statement still goes through the session (its pending objects are flushed first)."""
    options = {"synchronize_session": False}
    rows = session.execute(stmt.returning(*JOB_COLUMNS).execution_options(**options))
    return [job_of(row) for row in rows]


def returning_one(session: Session, stmt: Any) -> Job | None:
    found = returning_all(session, stmt)
    return found[0] if found else None


@cache
def attribute_names(model: type[SQLModel]) -> dict[str, str]:
    """Column name to attribute name (``metadata`` is ``Job.user_metadata``).

    Configures the mappers first: a process whose first rows come through
    :func:`detached` has not had the ORM do it (a constructor or a query would).
    """
    configure_mappers()
    mapper = sa.inspect(model)
    return {column.name: mapper.get_property_by_column(column).key for column in mapper.columns}


def detached(model: type[M], row: Mapping[str, Any]) -> M:
    """A model object from a row of all its columns by column name (a ``dict`` of
    ``db/direct.py``), made as the ORM loads one (no ``__init__``: the values go
    straight into the instance) and handed out detached, as if by a session that has
    since closed; without a session's identity map and hydration, and without the
    validation a constructor runs."""
    names = attribute_names(model)
    obj: M = sa.inspect(model).class_manager.new_instance()
    values = obj.__dict__
    for key, value in row.items():
        values[names[key]] = value
    make_transient_to_detached(obj)
    return obj


@cache
def _defaults(model: type[SQLModel]) -> tuple[tuple[str, Any, Any], ...]:
    """Each optional field: its name, its default factory (or None) and its default."""
    found = []
    for name, field in model.model_fields.items():
        if field.is_required():  # as the constructor: a required field stays unset
            continue
        factory, default = field.default_factory, field.default
        if factory is None and not isinstance(default, _IMMUTABLE):
            factory = partial(copy.deepcopy, default)  # as pydantic: a fresh copy each time
        found.append((name, factory, default))
    return tuple(found)


_IMMUTABLE = (str, int, float, bool, bytes, type(None), Enum)


def transient(model: type[M], values: dict[str, Any]) -> M:
    """A new model object, as ``model(**values)`` makes one (transient, not validated:
    a table model's constructor does not validate either), without the constructor's
    per-field work: SQLModel sets each field through SQLAlchemy's and pydantic's
    ``__setattr__``, which for a ``Job``'s 38 fields was a tenth of the API's CPU per
    submission. The fields' defaults and ``values`` go straight into the instance,
    whose pydantic bookkeeping is set as ``model_construct`` sets it; a session still
    inserts every value (the ORM reads them from the instance's dict)."""
    unknown = values.keys() - model.model_fields.keys()
    if unknown:
        raise TypeError(f"{model.__name__} has no field {', '.join(sorted(unknown))}")
    attribute_names(model)  # the mappers are configured
    obj: M = sa.inspect(model).class_manager.new_instance()
    state = obj.__dict__
    for name, factory, default in _defaults(model):
        if name not in values:
            state[name] = factory() if factory is not None else default
    state.update(values)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj
