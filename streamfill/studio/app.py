"""The studio's HTTP layer (Starlette): one static page, a JSON API, frames as JPEG, masks as PNG, job progress
as server-sent events. The only module that imports the web framework, with ``server``."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import ipaddress
import json
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from streamfill.errors import InputError, MaskError, StreamfillError
from streamfill.studio import paths
from streamfill.studio.session import ClipBusy, Studio, UploadTooLarge

TOKEN_COOKIE = "streamfill_studio_token"
TOKEN_HEADER = "x-streamfill-token"
MAX_JSON = 64 * 1024**2
# The page loads only its own files; no other site may frame it (clickjacking) or guess content types.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def static_dir() -> Path:
    return Path(str(resources.files("streamfill.studio") / "static"))


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(value: str) -> str:
    """The host part of a Host header (``[::1]:7860`` -> ``::1``)."""
    return urlsplit(f"//{value}").hostname or ""


def _cookie(request: Request) -> str:
    """The token cookie's name for this server: browsers share cookies across the ports of a host, so two
    studios (two ports) in one browser would overwrite each other's token under one name."""
    server = request.scope.get("server") or (None, None)
    return f"{TOKEN_COOKIE}_{server[1]}" if server[1] else TOKEN_COOKIE


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


class Guard:
    """ASGI middleware: with a token, every request must carry it (``?token=``, the ``X-Streamfill-Token``
    header, or the cookie the page gets); without one (loopback), the Host header must name this machine
    (no DNS rebinding). Requests that change state must come from this page (Origin matches Host)."""

    def __init__(self, app, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        problem = self._check(request)
        if problem is not None:
            return await _error(problem, 403)(scope, receive, send)
        return await self.app(scope, receive, send)

    def _check(self, request: Request) -> str | None:
        host = request.headers.get("host", "")
        if self.token is None:
            if not is_loopback(_host_name(host)):
                return "this studio only answers on this machine (loopback); start it with --token to share it"
        else:
            given = (request.query_params.get("token") or request.headers.get(TOKEN_HEADER)
                     or request.cookies.get(_cookie(request)) or "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return "missing or wrong token: open the URL the studio printed (it carries ?token=...)"
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin is not None and urlsplit(origin).netloc != host:
                return "requests that change something must come from the studio's own page"
        return None


def create_app(studio: Studio, *, token: str | None = None) -> Starlette:
    """The ASGI application for ``studio``; ``token`` (optional) protects every request."""

    async def index(request: Request) -> Response:
        response = FileResponse(static_dir() / "index.html", headers={"Cache-Control": "no-store", **PAGE_HEADERS})
        if token is not None and request.query_params.get("token"):
            response.set_cookie(_cookie(request), token, httponly=True, samesite="strict")
        return response

    def state(request: Request) -> Response:
        return JSONResponse(studio.state())

    def files(request: Request) -> Response:
        return JSONResponse(paths.listing(studio.root, request.query_params.get("path", "")))

    async def open_clip(request: Request) -> Response:
        body = await _json(request)
        rel = body.get("path") if isinstance(body, dict) else None
        if not isinstance(rel, str):
            raise InputError("say which file to open")
        path = paths.resolve(studio.root, rel)
        if not path.is_file():
            raise paths.OutsideRoot(f"not a file: {rel}")
        clip = await run_in_threadpool(studio.open_clip, path, paths.relative_to(studio.root, path))
        return JSONResponse(clip.describe())

    async def upload(request: Request) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > studio.limits.max_upload:
            raise UploadTooLarge(studio.limits.max_upload)
        path = studio.upload_path(request.query_params.get("name", "upload"))
        try:
            size = 0
            with open(path, "wb") as fh:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > studio.limits.max_upload:
                        raise UploadTooLarge(studio.limits.max_upload)
                    fh.write(chunk)
        except ClientDisconnect:  # the page went away mid-upload: nothing to keep, nobody to answer
            studio.discard_upload(path)
            return Response(status_code=400)
        except BaseException:
            studio.discard_upload(path)
            raise
        clip = await run_in_threadpool(studio.open_upload, path)
        return JSONResponse(clip.describe())

    def clip_info(request: Request) -> Response:
        return JSONResponse(studio.clip(request.path_params["clip"]).describe())

    def close_clip(request: Request) -> Response:
        clip = studio.clip(request.path_params["clip"])
        studio.close_clip(clip)
        return JSONResponse({"closed": clip.id})

    def frame(request: Request) -> Response:
        """A preview JPEG. Source frames: ``?approx=1`` (the pointer during a drag) answers at once with the
        nearest frame decoded so far; ``X-Frame-Index`` says which frame the picture is, ``X-Frame-Exact``
        whether it is the one asked for (the page marks the others approximate)."""
        clip = studio.clip(request.path_params["clip"])
        which = request.query_params.get("which", "source")
        if which not in ("source", "result"):
            raise InputError("which= must be source or result")
        index = request.path_params["index"]
        if which == "source":
            data, shown, exact = clip.scrub(index, exact=request.query_params.get("approx") not in ("1", "true"))
        else:
            data, _ = clip.frame_jpeg(index, which)
            shown, exact = index, True
        return Response(data, media_type="image/jpeg",
                        headers={"Cache-Control": "no-cache", "X-Frame-Time": f"{clip.seeker.time_of(shown):.9f}",
                                 "X-Frame-Index": str(shown), "X-Frame-Exact": "1" if exact else "0"})

    def mask(request: Request) -> Response:
        clip = studio.clip(request.path_params["clip"])
        return Response(clip.mask_png(request.path_params["index"]), media_type="image/png",
                        headers={"Cache-Control": "no-cache"})

    def save_base(request: Request) -> Response:
        clip = studio.clip(request.path_params["clip"])
        return JSONResponse({"base": clip.save_base(request.path_params["index"])})

    def masks_file(request: Request) -> Response:
        clip = studio.clip(request.path_params["clip"])
        masks = clip.masks
        if masks is None or not masks.path.is_file():
            raise InputError("no masks yet: draw on a frame and press Track")
        return FileResponse(masks.path, media_type="video/x-matroska",
                            filename=f"{Path(clip.name).stem}-masks.mkv")

    async def track(request: Request) -> Response:
        clip = studio.clip(request.path_params["clip"])
        body = await _json(request)
        items = body.get("keyframes") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise InputError("nothing to track: paint over the object (or draw a box) on a frame first")
        decoded = []
        for item in items:
            if not isinstance(item, dict):
                raise InputError("a keyframe must be an object with index and mask or box")
            item = dict(item)
            if isinstance(item.get("mask"), str):
                item["mask"] = _data_url(item["mask"], item.get("index"))
            decoded.append(item)
        keys = await run_in_threadpool(studio.keyframes, clip, decoded)
        return JSONResponse(studio.start_track(clip, keys).snapshot())

    async def remove(request: Request) -> Response:
        clip = studio.clip(request.path_params["clip"])
        body = await _json(request)
        if not isinstance(body, dict):
            raise InputError("the request must be a JSON object ({\"engine\": ..., \"temporal\": ...})")
        job = studio.start_remove(clip, str(body.get("engine", studio.config.engine.name)),
                                  str(body.get("temporal", studio.config.temporal.mode)))
        return JSONResponse(job.snapshot())

    def job_info(request: Request) -> Response:
        return JSONResponse(studio.job(request.path_params["job"]).snapshot())

    async def events(request: Request) -> Response:
        job = studio.job(request.path_params["job"])

        async def stream():
            while True:
                snap = job.snapshot()
                yield f"data: {json.dumps(snap)}\n\n"
                if snap["state"] in ("done", "failed", "cancelled") or studio.stopping:
                    return
                await asyncio.sleep(0.25)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def cancel(request: Request) -> Response:
        job = studio.job(request.path_params["job"])
        studio.cancel(job)
        return JSONResponse(job.snapshot())

    def download(request: Request) -> Response:
        job = studio.job(request.path_params["job"])
        path = studio.file_of(job)
        return FileResponse(path, filename=path.name,
                            media_type="video/mp4" if path.suffix == ".mp4" else "video/x-matroska")

    async def on_streamfill_error(request: Request, exc: StreamfillError) -> Response:
        status = 400
        if isinstance(exc, paths.NotFound):
            status = 404
        elif isinstance(exc, UploadTooLarge):
            status = 413
        elif isinstance(exc, MaskError):
            status = 422
        elif isinstance(exc, ClipBusy):
            status = 409
        return _error(str(exc), status)

    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        return _error(exc.detail or "not found", exc.status_code)

    routes = [
        Route("/", index),
        Route("/api/state", state),
        Route("/api/files", files),
        Route("/api/open", open_clip, methods=["POST"]),
        Route("/api/upload", upload, methods=["POST"]),
        Route("/api/clips/{clip}", clip_info),
        Route("/api/clips/{clip}", close_clip, methods=["DELETE"]),
        Route("/api/clips/{clip}/frames/{index:int}", frame),
        Route("/api/clips/{clip}/masks/{index:int}", mask),
        Route("/api/clips/{clip}/masks.mkv", masks_file),
        Route("/api/clips/{clip}/bases/{index:int}", save_base, methods=["POST"]),
        Route("/api/clips/{clip}/track", track, methods=["POST"]),
        Route("/api/clips/{clip}/remove", remove, methods=["POST"]),
        Route("/api/jobs/{job}", job_info),
        Route("/api/jobs/{job}/events", events),
        Route("/api/jobs/{job}/cancel", cancel, methods=["POST"]),
        Route("/api/jobs/{job}/download", download),
        Mount("/static", StaticFiles(directory=static_dir()), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={StreamfillError: on_streamfill_error,
                                                       HTTPException: on_http_error})
    app.add_middleware(Guard, token=token)
    return app


async def _json(request: Request):
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_JSON:
            raise InputError(f"the request is larger than {MAX_JSON // 1024**2} MB")
    try:
        return json.loads(bytes(body) or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[..." 100,000 deep
        raise InputError("the request is not valid JSON") from None


def _data_url(value: str, index) -> bytes:
    """The bytes of a ``data:image/png;base64,...`` URL (or plain base64)."""
    if value.startswith("data:"):
        head, _, value = value.partition(",")
        if ";base64" not in head:
            raise MaskError(f"keyframe {index}: the mask must be base64 PNG data")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MaskError(f"keyframe {index}: the mask is not valid base64") from None
