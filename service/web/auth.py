"""Who is looking, and what every page shares: the session, the CSRF check, flash notes.

The session cookie is made and checked by ``intake.sessions``; this module sets it
(``HttpOnly``, ``SameSite=Strict``, ``Secure`` when the request came over TLS) and turns
its absence into a trip to the sign-in page. Every POST carries a form token
(``_csrf`` field or ``X-CSRF-Token`` header) checked by :func:`csrf_guard`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import structlog
from anyio import to_thread
from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template

from service.db.models import Client
from service.errors import Forbidden, HaulError, NotFound, Unauthorized
from service.intake import sessions
from service.intake.clients import is_admin

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers import BaseRouteHandler

    from service.runtime import Runtime

log = structlog.get_logger(__name__)

FLASH_COOKIE = "haul_flash"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRejected(HaulError):
    """This form has expired or did not come from this site; reload the page and try again."""


def runtime_of(request: Request[Any, Any, Any]) -> Runtime:
    return cast("Runtime", request.app.state.runtime)


def provide_viewer(request: Request[Any, Any, Any]) -> Client:
    """The signed-in client; :class:`Unauthorized` (to the sign-in page) otherwise."""
    return sessions.client_of(runtime_of(request), request.cookies.get(sessions.SESSION_COOKIE))


def provide_admin(viewer: NamedDependency[Client]) -> Client:
    """The signed-in client when it holds an admin key; operator pages do not exist for others."""
    if not is_admin(viewer):
        raise NotFound("no such page")
    return viewer


def secure(request: Request[Any, Any, Any]) -> bool:
    return request.url.scheme == "https"


def cookie(request: Request[Any, Any, Any], name: str, value: str, max_age: int) -> Cookie:
    return Cookie(
        key=name,
        value=value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )


def gone(request: Request[Any, Any, Any], name: str) -> Cookie:
    """A cookie that tells the browser to forget ``name``."""
    return cookie(request, name, "", 0)


async def csrf_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Refuse a state-changing request whose form token does not match this browser's cookies."""
    request = cast("Request[Any, Any, Any]", connection)
    if request.method in _SAFE:
        return
    token = request.headers.get("x-csrf-token")
    if token is None:
        form = await request.form()
        token = cast("str | None", form.get("_csrf"))
    valid = await to_thread.run_sync(
        sessions.csrf_valid,
        runtime_of(request),
        token,
        request.cookies.get(sessions.CSRF_COOKIE),
        request.cookies.get(sessions.SESSION_COOKIE),
    )
    if not valid:
        raise CsrfRejected()


def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    viewer: Client | None = None,
    status_code: int = 200,
    session_cookie: str | None = None,
    **context: Any,
) -> Template:
    """Render a page with what every page needs: a form token, the viewer, any flash note.

    ``session_cookie`` is the session the page's forms will be sent with (a page drawn
    right after sign-in or sign-out has a new one); by default the request's.
    """
    rt = runtime_of(request)
    cookies = []
    csrf = request.cookies.get(sessions.CSRF_COOKIE)
    if not csrf:
        csrf = sessions.new_csrf_cookie()
        cookies.append(cookie(request, sessions.CSRF_COOKIE, csrf, 365 * 24 * 3600))
    if session_cookie is None:
        session_cookie = request.cookies.get(sessions.SESSION_COOKIE)
    flash = request.cookies.get(FLASH_COOKIE)
    if flash:
        cookies.append(gone(request, FLASH_COOKIE))
    return Template(
        template,
        context={
            "csrf": sessions.csrf_token(rt, csrf, session_cookie),
            "viewer": viewer,
            "admin": viewer is not None and is_admin(viewer),
            "flash": flash,
            "path": request.url.path,
            **context,
        },
        cookies=cookies,
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


def back(
    request: Request[Any, Any, Any], note: str | None = None, to: str | None = None
) -> Redirect:
    """See-other to ``to`` or the page the form was on (same site only), with a flash note."""
    target = to or _referer_path(request) or "/jobs"
    cookies = [cookie(request, FLASH_COOKIE, note, 60)] if note else []
    if request.headers.get("hx-request"):
        return Redirect(target, status_code=303, headers={"HX-Redirect": target}, cookies=cookies)
    return Redirect(target, status_code=303, cookies=cookies)


def _referer_path(request: Request[Any, Any, Any]) -> str | None:
    referer = request.headers.get("referer")
    if not referer:
        return None
    parts = urlsplit(referer)
    if parts.netloc and parts.netloc != request.url.netloc:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _signin(request: Request[Any, Any, Any], _: Exception) -> Response[Any]:
    if request.headers.get("hx-request"):
        return Response(b"", status_code=200, headers={"HX-Redirect": "/signin"})
    return Redirect("/signin", status_code=303, cookies=[gone(request, sessions.SESSION_COOKIE)])


def _error(request: Request[Any, Any, Any], status: int, message: str) -> Response[Any]:
    return page(request, "error.html", status_code=status, message=message)


def _haul_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, HaulError)
    if isinstance(exc, (NotFound, Forbidden)):
        return _error(request, 404, "There is no such page, or it is not yours.")
    if isinstance(exc, CsrfRejected):
        return _error(request, 403, exc.message)
    if request.method in _SAFE:
        return _error(request, 400, exc.message)
    return back(request, exc.message)


def _http_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    message = "There is no such page." if status == 404 else str(exc.detail)
    return _error(request, status, message)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("dashboard error", path=request.url.path, exc_info=exc)
    return _error(request, 500, "Something went wrong on our side; it has been logged.")


#: The dashboard answers people, not programs: pages and redirects instead of problem+json.
EXCEPTION_HANDLERS: dict[Any, Any] = {
    Unauthorized: _signin,
    HaulError: _haul_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
