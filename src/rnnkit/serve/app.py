"""The HTTP app: FastAPI routes over the served models, behind :class:`.guard.Guard`.

``create_app(config)`` builds it; ``create_app_from_env()`` is the factory each uvicorn
worker calls (``rnnkit serve`` passes the config in a JSON file named by
:data:`.config.ENV_VAR`). Models load in a background thread once the worker starts, so
``/health`` answers at once and ``/ready`` says when every model is loaded.

Every error is JSON ``{"error": "<one line>", "status": N[, "limit": "<option>"]}``: a
request's own mistakes are 4xx and never stop the server; anything unexpected is a 500 that
says "internal error" (the traceback goes to the server log, never to the client).
"""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, AsyncIterator, Dict, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import UserError
from . import handlers
from .config import ServeConfig, read_token
from .guard import Guard, error_body
from .models import Registry, Served
from .schemas import REQUESTS, RESPONSES, AsrRequest, ErrorResponse

log = logging.getLogger("rnnkit.serve")
PAGE = "index.html"


def fail(status: int, message: str, limit: Optional[str] = None) -> JSONResponse:
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")  # a lone surrogate from a request
    return JSONResponse(error_body(status, message, limit), status_code=status)


def validation_message(errors: Any) -> str:
    """The first problem of a pydantic error list as one line: ``texts.0: Input should be ...``."""
    e = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
    if e.get("type") == "json_invalid":
        return f"the body is not valid JSON ({e.get('ctx', {}).get('error', 'parse error')})"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return (f"{loc}: " if loc else "the body: ") + str(e.get("msg", "invalid"))[:200] + more


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        msg = (f"no such endpoint: {request.method} {request.url.path[:200]}" if exc.status_code == 404
               else f"{request.method} is not allowed on {request.url.path[:200]}" if exc.status_code == 405
               else str(exc.detail))
        return fail(exc.status_code, msg)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return fail(422, validation_message(exc.errors()))

    @app.exception_handler(handlers.Refused)
    async def refused(request: Request, exc: handlers.Refused) -> JSONResponse:
        return fail(exc.status, exc.message, exc.limit)

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError) -> JSONResponse:
        return fail(422, str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return fail(500, "internal error (the server log has the details)")


def create_app(config: ServeConfig, token: Optional[str] = None) -> FastAPI:
    """The app serving ``config.models`` (``token``: the bearer token, else read from
    ``config.token_file`` when set)."""
    if token is None and config.token_file:
        token = read_token(config.token_file)
    registry = Registry(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.get_running_loop().run_in_executor(None, registry.load_all)
        yield
        await registry.close()
        await asyncio.wait([loading], timeout=1)

    app = FastAPI(title="rnnkit", version=__version__, lifespan=lifespan,
                  description="Trained rnnkit models behind an HTTP JSON API. Every endpoint but /health "
                              "needs `Authorization: Bearer <token>` when the server has a token.")
    app.state.registry = registry
    app.state.config = config
    install_error_handlers(app)
    add_routes(app, registry, config)
    app.openapi = lambda: openapi_schema(app)  # type: ignore[method-assign]
    app.add_middleware(Guard, token=token, max_body_bytes=config.max_body_bytes)
    return app


def create_app_from_env() -> FastAPI:
    """The uvicorn app factory: one torch thread per worker, the config from ``rnnkit serve``."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return create_app(ServeConfig.from_env())


def _model(registry: Registry, name: str) -> Served:
    m = registry.get(name)
    if m is None:
        raise handlers.Refused(404, f"no model named {name[:100]!r} (GET /v1/models lists them)")
    return m


def add_routes(app: FastAPI, registry: Registry, config: ServeConfig) -> None:
    page = resources.files(__package__).joinpath("static", PAGE).read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health", summary="liveness: the process answers")
    async def health() -> Dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="readiness: every model is loaded (503 until then)")
    async def ready() -> JSONResponse:
        loading = [m.name for m in registry.models.values() if not m.ready and not m.error]
        failed = {m.name: m.error for m in registry.models.values() if m.error}
        body = {"ready": registry.ready, "models": len(registry.models), "loading": loading, "failed": failed,
                "worker": os.getpid()}
        return JSONResponse(body, status_code=200 if registry.ready else 503)

    @app.get("/v1/models", summary="the served models: task, encoder, size, training data, metrics")
    async def models() -> Dict[str, Any]:
        return {"models": [m.listing() for m in registry.models.values()]}

    @app.get("/v1/models/{name}", summary="one served model")
    async def model(name: str) -> Dict[str, Any]:
        return _model(registry, name).listing()

    @app.post("/v1/models/{name}/predict", summary="run a model (the body's schema depends on its task)",
              openapi_extra=predict_openapi(), response_model=None)
    async def predict(name: str, request: Request) -> Any:
        m = _model(registry, name)
        if m.error:
            raise handlers.Refused(503, f"model {name!r} failed to load: {m.error}")
        if not m.ready:
            raise handlers.Refused(503, f"model {name!r} is still loading (GET /ready)")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if m.task == "asr" and ctype == "multipart/form-data":
            req, raw = await asr_upload(request)
            return await handlers.asr(m, req, config, raw=raw)
        if ctype not in ("application/json", ""):
            raise handlers.Refused(415, f"send the request as application/json (got {ctype[:80]!r})"
                                   + ("; or multipart/form-data with a field 'audio'" if m.task == "asr" else ""))
        try:
            req = REQUESTS[m.task].model_validate_json(await request.body())
        except ValidationError as e:
            raise handlers.Refused(422, validation_message(e.errors(include_url=False))) from None
        if m.task == "charlm" and req.stream:
            events = await handlers.charlm_stream(m, req, config)
            return StreamingResponse(events, media_type="text/event-stream",
                                     headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
        return await handlers.HANDLERS[m.task](m, req, config)


async def asr_upload(request: Request):
    """(AsrRequest, the file's bytes) from a multipart form: ``audio`` (file), ``beam``, ``timestamps``."""
    try:
        form = await request.form(max_files=1, max_fields=8)
    except Exception:  # noqa: BLE001 - starlette/python-multipart raise several kinds
        raise handlers.Refused(400, "malformed multipart/form-data body") from None
    unknown = sorted(set(form.keys()) - {"audio", "beam", "timestamps"})
    if unknown:
        raise handlers.Refused(422, f"unknown form field(s): {', '.join(unknown)[:200]} (use audio, beam, timestamps)")
    upload = form.get("audio")
    if upload is None or isinstance(upload, str):
        raise handlers.Refused(422, "audio: upload the recording as a file field named 'audio'")
    fields: Dict[str, Any] = {"audio_base64": ""}
    beam = form.get("beam")
    if beam is not None:
        if not isinstance(beam, str) or not beam.strip().isdigit():
            raise handlers.Refused(422, "beam: must be a positive integer")
        fields["beam"] = int(beam)
    ts = form.get("timestamps")
    if ts is not None:
        if ts not in ("true", "false"):
            raise handlers.Refused(422, "timestamps: must be true or false")
        fields["timestamps"] = ts == "true"
    try:
        req = AsrRequest(**fields)
    except ValidationError as e:
        raise handlers.Refused(422, validation_message(e.errors(include_url=False))) from None
    return req, await upload.read()


def predict_openapi() -> Dict[str, Any]:
    ref = lambda m: {"$ref": f"#/components/schemas/{m.__name__}"}  # noqa: E731
    upload = {"type": "object", "required": ["audio"],
              "properties": {"audio": {"type": "string", "format": "binary"}, "beam": {"type": "integer"},
                             "timestamps": {"type": "boolean"}}}
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"oneOf": [ref(m) for m in REQUESTS.values()]}},
        "multipart/form-data": {"schema": upload}}},
        "responses": {"200": {"description": "the task's response (charlm with stream: text/event-stream)",
                              "content": {"application/json": {"schema": {"oneOf": [ref(m) for m in RESPONSES.values()]}},
                                          "text/event-stream": {"schema": {"type": "string"}}}},
                      **{str(s): {"description": d, "content": {"application/json": {"schema": ref(ErrorResponse)}}}
                         for s, d in ((401, "missing or wrong token"), (404, "no such model"),
                                      (413, "body over --max-body-mb"), (422, "invalid request or over a limit"),
                                      (503, "model still loading"))}}}


def openapi_schema(app: FastAPI) -> Dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in [*REQUESTS.values(), *RESPONSES.values(), ErrorResponse]:
        js = model.model_json_schema(ref_template="#/components/schemas/{model}")
        comps.update(js.pop("$defs", {}))
        comps[model.__name__] = js
    app.openapi_schema = schema
    return schema
