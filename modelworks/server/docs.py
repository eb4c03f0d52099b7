"""/docs: Swagger UI served from this server, never from a CDN.

FastAPI's own /docs and /redoc pages load their scripts from jsdelivr, so a browser reading the
API's documentation would fetch code from outside the machine. They are switched off; this page
uses the Swagger UI assets of the ``swagger-ui-bundle`` package instead: ``/docs`` is the page,
``/docs?asset=NAME`` its start-up script and two assets, allow-listed by name (one public route).
Without that package there is no /docs at all; /openapi.json is always served.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - API</title>
<link rel="stylesheet" href="/docs?asset=swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs?asset=swagger-ui-bundle.js"></script>
<script src="/docs?asset=start.js"></script></body></html>
"""
# validatorUrl null: Swagger UI would otherwise send the document to validator.swagger.io.
START = 'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", validatorUrl: null});\n'
ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}


def swagger_ui_folder() -> Path | None:
    """Where the installed ``swagger-ui-bundle`` keeps Swagger UI, or None when it is absent."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return Path(str(swagger_ui_path))


def install_docs(app: FastAPI) -> None:
    """Serve /docs from local assets when Swagger UI is installed (see the module docstring)."""
    folder = swagger_ui_folder()
    if folder is None:
        return
    page = PAGE.format(title=app.title)

    @app.get("/docs", include_in_schema=False)
    def docs(asset: str | None = None) -> Response:
        if asset is None:
            return HTMLResponse(page)
        if asset == "start.js":
            return Response(START, media_type="text/javascript")
        if asset not in ASSETS:
            raise HTTPException(404, "no such asset")
        cache = {"Cache-Control": "public, max-age=86400"}
        return FileResponse(folder / asset, media_type=ASSETS[asset], headers=cache)
