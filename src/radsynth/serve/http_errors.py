"""HTTP failures as one line each: the status a client can act on and ``{"detail": ...}``."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from radsynth.education.render import STYLE_CSP_HASH
from radsynth.errors import PacsUnavailable, RadsynthError
from radsynth.serve.study import InvitationGone, StudyConflict, StudyNotFound
from radsynth.serve.uploads import UploadTooLarge

STATUS = {
    StudyNotFound: 404,
    StudyConflict: 409,
    InvitationGone: 410,
    UploadTooLarge: 413,
    PacsUnavailable: 503,
}


def install_error_handlers(app: FastAPI) -> None:
    """Every failure as one line in ``detail``, with a status a client can act on."""

    def status(err: RadsynthError) -> int:
        return next((code for kind, code in STATUS.items() if isinstance(err, kind)), 422)

    @app.exception_handler(RadsynthError)
    async def radsynth_error(_request: Request, err: RadsynthError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=status(err))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid request')}"}, status_code=422)


class BodyLimit:
    """Refuse a body over the upload limit: at once by its Content-Length, or, for a chunked
    body without one, as soon as the bytes read pass the limit (ASGI middleware, so nothing
    larger is ever spooled to disk)."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        limit_mb = f"{self.max_bytes / 1024**2:g} MB"
        if declared.isdigit() and int(declared) > self.max_bytes:
            size = f"{int(declared) / 1024**2:.1f} MB"
            response = JSONResponse({"detail": f"request body of {size} is over the {limit_mb} limit"}, 413)
            await response(scope, receive, send)
            return
        seen, exceeded, started = 0, False, False

        async def counted():
            # Past the limit the app is told the client left; its answer is replaced by a 413.
            nonlocal seen, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                exceeded = True
                return {"type": "http.disconnect"}
            return message

        async def guarded(message) -> None:
            nonlocal started
            if not exceeded:
                started = True
                await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            response = JSONResponse({"detail": f"request body is over the {limit_mb} limit"}, 413)
            await response(scope, receive, send)


# The page loads only its own script and style sheet; images and the handout preview come
# from blob: URLs the script makes (data: for the images inside a handout, whose one style
# block is allowed by its hash: the preview frame inherits this policy). No inline script,
# no other origin, no framing by another site (clickjacking).
CONTENT_SECURITY_POLICY = (
    f"default-src 'self'; script-src 'self'; style-src 'self' '{STYLE_CSP_HASH}'; "
    "img-src 'self' blob: data:; frame-src blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """Every response says how a browser may use it: the policy above, no MIME sniffing
    (a job's file is what its Content-Type says), no framing (ASGI middleware)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
