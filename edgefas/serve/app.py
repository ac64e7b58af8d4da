"""The HTTP API and the demo page, on FastAPI (Starlette underneath, uvicorn to run it).

Endpoints:

* ``POST /v1/detect``: the image as multipart field ``image`` or as the raw request body;
  returns the :class:`~edgefas.Result` as JSON. With ``?session=ID`` the frame also goes
  into a server-side :class:`~edgefas.session.Session` for that ID and the verdict comes back
  under ``"session"`` (the demo page uses this); ``&t=SECONDS`` stamps the frame with the
  client's capture time (recorded frames, or a client far from the server).
* ``GET /v1/health``: bundle name and threshold.
* ``GET /``: the demo page (browser camera -> live verdict with face box and score).
* ``GET /docs``, ``GET /openapi.json``: the OpenAPI schema.

Errors are 4xx with ``{"detail": "..."}``: 400 no image in the request (or a session's frames
with and without ``t``, or ``t`` without a session), 413 upload over
``max_upload_bytes``, 422 an image that cannot be scored (undecodable, grayscale, too large:
the Result with the reason comes along). The Detector runs in Starlette's thread pool; it is
thread-safe, so concurrent requests give the same answers as sequential ones.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from importlib import resources
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ..detector import Detector
from ..errors import EdgefasError
from ..result import Decision
from ..session import Session, Verdict

#: 10 MiB: a 4K JPEG is ~3 MB; anything larger is refused before it is read in full.
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_SESSIONS = 256


class ResultModel(BaseModel):
    """:meth:`edgefas.Result.to_dict` (see the Result docstring for each field)."""

    decision: Decision
    live_score: float | None
    threshold: float
    box: list[float] | None
    landmarks: list[list[float]] | None
    face_score: float | None
    timings_ms: dict[str, float]
    reasons: list[str]
    session: Verdict | None = None   # the session's answer after this frame (?session=)


class ErrorModel(BaseModel):
    """Every 4xx answer: what went wrong in one string; for an image that could not be scored
    (422) also its Result, and with ``?session=`` the session's verdict."""

    detail: str
    result: ResultModel | None = None
    session: Verdict | None = None   # the session's answer after this frame (?session=)


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge(int(declared))
    chunks, size = [], 0
    async for chunk in request.stream():  # chunked uploads have no content-length
        size += len(chunk)
        if size > limit:
            raise _TooLarge(size)
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # so request.form() parses what was read (Starlette caches it here)
    return body


class _Sessions:
    """Bounded, thread-safe map of session id -> (Session, lock); the oldest is dropped."""

    def __init__(self, det: Detector, cap: int = MAX_SESSIONS) -> None:
        self.det, self.cap = det, cap
        self._items: OrderedDict[str, tuple[Session, threading.Lock]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sid: str) -> tuple[Session, threading.Lock]:
        with self._lock:
            if sid not in self._items:
                self._items[sid] = (self.det.session(), threading.Lock())
                while len(self._items) > self.cap:
                    self._items.popitem(last=False)
            self._items.move_to_end(sid)
            return self._items[sid]


def _page() -> str:
    return (resources.files("edgefas.serve") / "page.html").read_text(encoding="utf-8")


def create_app(detector: Detector | None = None, *,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> FastAPI:
    """The ASGI app; ``uvicorn.run(create_app(), host="127.0.0.1", port=8000)`` serves it."""
    det = detector or Detector()
    sessions = _Sessions(det)
    app = FastAPI(title="edgefas", version="1",
                  description="Face anti-spoofing: POST an image, get live/spoof with a "
                              "calibrated score. Local demo server.")

    def error(status: int, detail: str, result: dict[str, Any] | None = None,
              verdict: dict[str, Any] | None = None) -> JSONResponse:
        body: dict[str, Any] = {"detail": detail}
        if result is not None:
            body["result"] = result
        if verdict is not None:   # the frame still counted in its session (as no face)
            body["session"] = verdict
        return JSONResponse(body, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_parameters(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer puts a list in "detail"; every other error here is one string
        parts = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()]
        return error(422, "; ".join(parts) or "invalid request")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return _page()

    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "bundle": det.bundle.name, "threshold": det.threshold}

    @app.post("/v1/detect", response_model=ResultModel, responses={
        400: {"model": ErrorModel, "description": "no image in the request, a malformed "
              "multipart body, or a frame time t without a session (or missing in one that "
              "had it)"},
        413: {"model": ErrorModel, "description": f"upload larger than {max_upload_bytes} bytes"},
        422: {"model": ErrorModel, "description": "the image cannot be scored (undecodable, "
                                                  "grayscale, too large, ...) or a bad parameter"}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                                               "properties": {"image": {"type": "string",
                                                                        "format": "binary"}}}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def detect(request: Request,
                     session: str | None = Query(None, max_length=64,
                                                 description="keep a video session under this "
                                                             "id; its verdict is returned"),
                     t: float | None = Query(None, ge=0, allow_inf_nan=False, description=(
                         "with session: the frame's capture time in seconds on the client's "
                         "clock (all frames of a session with it, or none: then the server's "
                         "arrival time counts); sessions time motion pairs and timeouts by it"))
                     ) -> Any:
        try:
            body = await _read_body(request, max_upload_bytes)
        except _TooLarge as exc:
            return error(413, f"upload is {exc.args[0]} bytes; the limit is {max_upload_bytes}")
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            try:
                form = await request.form(max_files=4, max_fields=16)
            except Exception as exc:  # python-multipart's parse errors have no common base
                return error(400, f"malformed multipart body: {exc}")
            try:  # closing the form closes its spooled temp files (else ResourceWarning)
                item = form.get("image")
                if item is None or isinstance(item, str):
                    return error(400, "multipart body has no file field named 'image'")
                data = await item.read()
            finally:
                await form.close()
        else:
            # any other type is the raw image, including application/x-www-form-urlencoded,
            # which `curl --data-binary @photo.jpg` sends when no -H is given; a body that is
            # not an image comes back 422 with the decoder's reason
            data = body
        if not data:
            return error(400, "no image: the request body is empty")
        if session is None and t is not None:
            # a frame time means nothing outside a session: say so rather than ignore it
            return error(400, "t (a frame time) needs session=ID: only sessions use it")
        if session is None:
            result = await run_in_threadpool(det, data)
            verdict = None
        else:
            sess, lock = sessions.get(session)

            def step() -> Any:
                with lock:  # one session is one camera stream: frames in order
                    return sess(data, t=t)
            try:
                st = await run_in_threadpool(step)
            except EdgefasError as exc:   # a session's frames with and without t
                return error(400, str(exc))
            result, verdict = st.result, st.verdict.to_dict()
        if result.decision is Decision.BAD_INPUT:
            return error(422, "; ".join(result.reasons), result.to_dict(), verdict)
        return {**result.to_dict(), "session": verdict}

    return app
