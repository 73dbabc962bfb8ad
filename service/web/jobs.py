"""Pages for people who submit: the jobs list with its submit form, a job's page, the actions.

Every page calls the same use cases as ``/v1/jobs`` (``intake.jobs``, ``intake.replay``,
``webhooks.endpoints``), filtered by the signed-in client. Live numbers arrive over
the API's ``/v1/events`` stream, one per tab; rows and panels are re-rendered here
(``…/row``, ``…/panel``) when their job changes state.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template
from pydantic import ValidationError

from service.db.models import Client
from service.domain.options import JobOptions, Preset
from service.domain.states import Kind, Status
from service.errors import InvalidInput, NotFound
from service.intake import jobs, replay
from service.intake.admission import AlreadyAccepted
from service.live import views as live_views
from service.web.auth import back, page, runtime_of
from service.web.signin import FORM
from service.webhooks.endpoints import deliveries, redeliver

PAGE_SIZE = 25


def _options(form: dict[str, str]) -> JobOptions | None:
    """The typed options a form chose; None when it chose none (the preset decides)."""
    chosen: dict[str, Any] = {}
    if form.get("height"):
        chosen["height"] = form["height"]
    if form.get("audio_codec"):
        chosen.update(audio_only=True, audio_codec=form["audio_codec"])
    if form.get("subtitles", "").strip():
        chosen["subtitles"] = [s.strip() for s in form["subtitles"].split(",") if s.strip()]
    for flag in ("embed_metadata", "embed_thumbnail"):
        if form.get(flag):
            chosen[flag] = True
    if not chosen:
        return None
    try:
        return JobOptions.model_validate(chosen)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from exc


def _int(text: str | None, name: str) -> int:
    try:
        return int(text or 0)
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a whole number") from exc


class JobPages(Controller):
    include_in_schema = False

    @get("/", sync_to_thread=False)
    def home(self) -> Redirect:
        return Redirect("/jobs", status_code=303)

    @get("/jobs", sync_to_thread=True)
    def list_page(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Client],
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
        q: Annotated[str | None, QueryParameter(max_length=200)] = None,
        status_filter: Annotated[str | None, QueryParameter(name="status", max_length=32)] = None,
        kind_filter: Annotated[str | None, QueryParameter(name="kind", max_length=32)] = None,
    ) -> Template:
        rt = runtime_of(request)
        # The form sends ``status=`` for "all", which the JSON API would refuse.
        status = _status(status_filter)
        kind = _kind(kind_filter)
        after = live_views.last_id(rt, viewer)  # before the rows: a change since is replayed
        found = jobs.list_jobs(
            rt, viewer, status=status, cursor=cursor, limit=PAGE_SIZE, text=q, kind=kind
        )
        shown = kind.value if kind is Kind.CHECK else ""
        filters = (("status", status and status.value), ("q", q), ("kind", shown))
        return page(
            request,
            "jobs.html",
            viewer=viewer,
            page=found,
            status=status.value if status else "",
            q=q or "",
            kind=shown,
            # the filters the pager's links carry on
            keep=urlencode({k: v for k, v in filters if v}),
            statuses=[s.value for s in Status],
            presets=[p.value for p in Preset],
            first_page=cursor is None,
            events_after=after,
        )

    @post("/jobs", sync_to_thread=True)
    def submit(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Client],
        data: Annotated[dict[str, str], FORM],
    ) -> Redirect:
        url = data.get("url", "").strip()
        if not url:
            raise InvalidInput("Paste the address of a page or a file to download.")
        try:
            jobs.submit(
                runtime_of(request),
                viewer,
                url=url,
                preset=Preset(data["preset"]) if data.get("preset") else None,
                options=_options(data),
                priority=_int(data.get("priority"), "priority"),
            )
        except AlreadyAccepted as earlier:
            return back(request, "That job was accepted before.", f"/jobs/{earlier.job.id}")
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        return back(request, "Accepted: it will start shortly.", "/jobs")

    @get("/jobs/{job_id:uuid}/row", sync_to_thread=True)
    def row(
        self,
        request: Request[Any, Any, Any],
        job_id: FromPath[uuid.UUID],
        viewer: NamedDependency[Client],
    ) -> Template:
        view = jobs.get(runtime_of(request), viewer, job_id)
        return page(request, "_job_row.html", viewer=viewer, view=view)

    @get("/jobs/{job_id:uuid}", sync_to_thread=True)
    def job_page(
        self,
        request: Request[Any, Any, Any],
        job_id: FromPath[uuid.UUID],
        viewer: NamedDependency[Client],
    ) -> Template:
        after = live_views.last_id(runtime_of(request), viewer)  # before the job is read
        details = self._details(request, viewer, job_id)
        return page(request, "job.html", viewer=viewer, events_after=after, **details)

    @get("/jobs/{job_id:uuid}/panel", sync_to_thread=True)
    def panel(
        self,
        request: Request[Any, Any, Any],
        job_id: FromPath[uuid.UUID],
        viewer: NamedDependency[Client],
    ) -> Template:
        details = self._details(request, viewer, job_id)
        return page(request, "_job_panel.html", viewer=viewer, **details)

    @staticmethod
    def _details(
        request: Request[Any, Any, Any], viewer: Client, job_id: uuid.UUID
    ) -> dict[str, Any]:
        rt = runtime_of(request)
        view = jobs.get(rt, viewer, job_id)
        children = None
        if view.children is not None:
            children = jobs.list_jobs(rt, viewer, parent_id=job_id, limit=rt.settings.page_size_max)
        return {
            "view": view,
            "attempts": jobs.attempts(rt, viewer, job_id),
            "history": jobs.history(rt, viewer, job_id),
            "children": children,
            "deliveries": deliveries(rt, viewer, job_id),
        }

    @post("/jobs/{job_id:uuid}/cancel", sync_to_thread=True)
    def cancel(
        self,
        request: Request[Any, Any, Any],
        job_id: FromPath[uuid.UUID],
        viewer: NamedDependency[Client],
    ) -> Redirect:
        jobs.cancel(runtime_of(request), viewer, job_id)
        return back(request, "Cancelled.")

    @post("/jobs/{job_id:uuid}/retry", sync_to_thread=True)
    def retry(
        self,
        request: Request[Any, Any, Any],
        job_id: FromPath[uuid.UUID],
        viewer: NamedDependency[Client],
    ) -> Redirect:
        replay.retry_one(runtime_of(request), viewer, job_id)
        return back(request, "Queued again.")

    @post("/jobs/{job_id:uuid}/delete", sync_to_thread=True)
    def delete(
        self,
        request: Request[Any, Any, Any],
        job_id: FromPath[uuid.UUID],
        viewer: NamedDependency[Client],
    ) -> Redirect:
        jobs.delete(runtime_of(request), viewer, job_id)
        if request.headers.get("referer", "").endswith(f"/jobs/{job_id}"):
            return back(request, "Deleted.", "/jobs")
        return back(request, "Deleted.")

    @post("/jobs/{job_id:uuid}/redeliver", sync_to_thread=True)
    def redeliver(
        self,
        request: Request[Any, Any, Any],
        job_id: FromPath[uuid.UUID],
        viewer: NamedDependency[Client],
    ) -> Redirect:
        redeliver(runtime_of(request), viewer, job_id)
        return back(request, "The webhook will be sent again.")

    @get("/failed", sync_to_thread=True)
    def failed(self, request: Request[Any, Any, Any], viewer: NamedDependency[Client]) -> Template:
        """Failed jobs grouped by error class (the newest page of them)."""
        rt = runtime_of(request)
        after = live_views.last_id(rt, viewer)  # before the rows: a change since is replayed
        found = jobs.list_jobs(rt, viewer, status=Status.FAILED, limit=rt.settings.page_size_max)
        groups: dict[str, list[jobs.JobView]] = {}
        for view in found.items:
            groups.setdefault(view.job.error_class or "unknown", []).append(view)
        return page(
            request,
            "failed.html",
            viewer=viewer,
            groups=groups,
            more=found.next_cursor,
            events_after=after,
        )

    @post("/failed/retry", sync_to_thread=True)
    def retry_group(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Client],
        data: Annotated[dict[str, str], FORM],
    ) -> Redirect:
        error_class = data.get("error_class") or None
        if error_class == "unknown":
            raise NotFound("no such group")
        count = replay.retry_many(
            runtime_of(request),
            viewer,
            status=Status.FAILED,
            error_class=error_class,
            client_id=viewer.id,  # an admin's page shows its own jobs: retry only those
        )
        return back(request, f"Queued {count} job{'s' if count != 1 else ''} again.")


def _kind(value: str | None) -> Kind:
    """The list's kind filter: empty is downloads; ``check`` is the subscriptions' checks."""
    if not value:
        return Kind.DOWNLOAD
    try:
        return Kind(value)
    except ValueError:
        raise InvalidInput(f"kind: no such kind {value!r}") from None


def _status(value: str | None) -> Status | None:
    """The list's status filter: empty is every status; an unknown one is a 422 problem."""
    if not value:
        return None
    try:
        return Status(value)
    except ValueError:
        raise InvalidInput(f"status: no such status {value!r}") from None
