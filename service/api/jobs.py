"""``/v1/jobs``: thin handlers that read input, call one use case and shape the answer."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from service.api.deps import client_of
from service.api.files import RangeNotSatisfiable, file_response
from service.api.problems import documented, problem
from service.api.schemas import (
    AttemptList,
    AttemptOut,
    JobOut,
    JobPage,
    RetryFilter,
    RetryResult,
    SubmitJob,
)
from service.domain.states import Kind, Status
from service.intake import jobs, replay
from service.intake.admission import AlreadyAccepted
from service.observe.metrics import SUBMITTED

if TYPE_CHECKING:
    from litestar.response import Stream

    from service.db.models import Client
    from service.runtime import Runtime


IDEMPOTENCY_KEY = HeaderParameter(
    name="Idempotency-Key",
    required=False,
    description="Up to 255 visible ASCII characters, yours to choose per request (a UUID): the "
    "same key with the same request answers 200 with the job the first one made, with another "
    "request 422. Keys are yours alone and expire after HAUL_IDEMPOTENCY_TTL_S (a day).",
)

EARLIER_JOB = {
    HTTP_200_OK: ResponseSpec(
        data_container=JobOut,
        description="A job accepted before: this Idempotency-Key's, or a succeeded twin (dedupe)",
    )
}


class JobController(Controller):
    path = "/v1/jobs"
    tags = ["jobs"]

    @post(
        "/",
        status_code=HTTP_202_ACCEPTED,
        sync_to_thread=True,
        responses={**EARLIER_JOB, **documented(400, 403, 413, 422)},
    )
    def submit(
        self,
        data: JSONBody[SubmitJob],
        request: Request[Any, Any, Any],
        runtime: NamedDependency[Runtime],
        idempotency_key: Annotated[str | None, IDEMPOTENCY_KEY] = None,
    ) -> Response[JobOut]:
        """Accept a URL: the job is stored, then announced to the workers.

        With an ``Idempotency-Key``, sending the same request again answers 200 with the
        job the first one made; ``dedupe`` answers 200 with a succeeded twin.
        """
        # The client as the ``client`` dependency finds it, here in the handler's own
        # thread: one hand-off to a thread per submission instead of two.
        client = client_of(request)
        status = HTTP_202_ACCEPTED
        try:
            job = jobs.submit(
                runtime,
                client,
                url=data.url,
                preset=data.preset,
                options=data.options,
                priority=data.priority,
                metadata=data.metadata,
                callback_url=data.callback_url,
                idempotency_key=idempotency_key,
                dedupe=data.dedupe,
            )
            SUBMITTED.inc()
        except AlreadyAccepted as earlier:
            job, status = earlier.job, HTTP_200_OK
        return Response(
            JobOut.of(jobs.JobView(job=job)),
            status_code=status,
            headers={"Location": f"/v1/jobs/{job.id}"},
        )

    @get("/", sync_to_thread=True, responses=documented(400, 422))
    def list_jobs(
        self,
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
        status: FromQuery[Status | None] = None,
        parent_id: FromQuery[uuid.UUID | None] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
        q: Annotated[str | None, QueryParameter(max_length=200)] = None,
        kind: FromQuery[Kind] = Kind.DOWNLOAD,
    ) -> JobPage:
        """Your jobs, newest first; pass ``next_cursor`` back as ``cursor`` for the next page.
        ``q`` keeps the jobs whose address or title contains it (any case). Downloads only,
        unless ``kind=check`` asks for your subscriptions' checks instead."""
        page = jobs.list_jobs(
            runtime,
            client,
            status=status,
            parent_id=parent_id,
            cursor=cursor,
            limit=limit,
            text=q,
            kind=kind,
        )
        return JobPage(items=[JobOut.of(v) for v in page.items], next_cursor=page.next_cursor)

    @get("/{job_id:uuid}", sync_to_thread=True, responses=documented(404))
    def read(
        self,
        job_id: FromPath[uuid.UUID],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> JobOut:
        return JobOut.of(jobs.get(runtime, client, job_id))

    @post(
        "/{job_id:uuid}/cancel",
        status_code=200,
        sync_to_thread=True,
        responses=documented(404, 409),
    )
    def cancel(
        self,
        job_id: FromPath[uuid.UUID],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> JobOut:
        """A queued job never starts; a running one stops within a heartbeat or two."""
        return JobOut.of(jobs.cancel(runtime, client, job_id))

    @post(
        "/{job_id:uuid}/retry",
        status_code=HTTP_202_ACCEPTED,
        sync_to_thread=True,
        responses=documented(403, 404, 409),
    )
    def retry(
        self,
        job_id: FromPath[uuid.UUID],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> Response[JobOut]:
        """Queue a failed or cancelled job again, with a fresh attempt budget."""
        view = replay.retry_one(runtime, client, job_id)
        return Response(
            JobOut.of(view),
            status_code=HTTP_202_ACCEPTED,
            headers={"Location": f"/v1/jobs/{job_id}"},
        )

    @post("/retry", status_code=200, sync_to_thread=True, responses=documented(400, 403, 413, 422))
    def retry_many(
        self,
        data: JSONBody[RetryFilter],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> RetryResult:
        """Queue again every ended job matching the filter; says how many."""
        count = replay.retry_many(
            runtime,
            client,
            status=Status(data.status),
            error_class=data.error_class,
            since=data.since,
            client_id=data.client_id,
        )
        return RetryResult(requeued=count)

    @delete(
        "/{job_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        sync_to_thread=True,
        responses=documented(404),
    )
    def remove(
        self,
        job_id: FromPath[uuid.UUID],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> None:
        """Delete the job, its children and their files."""
        jobs.delete(runtime, client, job_id)

    @get("/{job_id:uuid}/attempts", sync_to_thread=True, responses=documented(404))
    def attempts(
        self,
        job_id: FromPath[uuid.UUID],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> AttemptList:
        return AttemptList(items=[AttemptOut.of(a) for a in jobs.attempts(runtime, client, job_id)])

    @get(
        "/{job_id:uuid}/file",
        sync_to_thread=True,
        responses=documented(404, 416),
        opt={"session_cookie": True},
    )
    def file(
        self,
        job_id: FromPath[uuid.UUID],
        request: Request[Any, Any, Any],
        runtime: NamedDependency[Runtime],
        client: NamedDependency[Client],
    ) -> Stream | Response[dict[str, Any]]:
        """The downloaded file; honours a single ``Range``."""
        artifact, path = jobs.file_of(runtime, client, job_id)
        try:
            return file_response(
                path,
                filename=artifact.filename,
                mime=artifact.mime,
                range_header=request.headers.get("range"),
            )
        except RangeNotSatisfiable as exc:
            return problem(
                request,
                416,
                exc.message,
                slug="range-not-satisfiable",
                headers={"Content-Range": f"bytes */{exc.size}"},
            )
