"""Sign in with an API key, sign out. The key is read from the form, checked, and dropped:
it is never written to a page, a URL or a log line."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from service.errors import Unauthorized
from service.intake import sessions
from service.web.auth import cookie, gone, page, runtime_of

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)


class SignInController(Controller):
    include_in_schema = False

    @get("/signin", sync_to_thread=True)
    def form(self, request: Request[Any, Any, Any]) -> Template:
        return page(request, "signin.html")

    @post("/signin", sync_to_thread=True)
    def sign_in(
        self, request: Request[Any, Any, Any], data: Annotated[dict[str, str], FORM]
    ) -> Template | Redirect:
        rt = runtime_of(request)
        try:
            _, value = sessions.sign_in(rt, data.get("key", ""))
        except Unauthorized:
            return page(
                request,
                "signin.html",
                status_code=401,
                error="That key is not valid, or it was revoked.",
            )
        session = cookie(request, sessions.SESSION_COOKIE, value, rt.settings.session_max_age_s)
        return Redirect("/jobs", status_code=303, cookies=[session])

    @post("/signout", sync_to_thread=False)
    def sign_out(self, request: Request[Any, Any, Any]) -> Redirect:
        return Redirect(
            "/signin", status_code=303, cookies=[gone(request, sessions.SESSION_COOKIE)]
        )
