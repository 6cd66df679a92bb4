"""The API reference pages `/docs` (Swagger UI) and `/redoc`, served offline with CSP nonces, and `/favicon.ico`.

Swagger UI and ReDoc come from the `fastapi-offline` wheel (its `static/` folder, mounted at
`/docs/assets/`), so the pages work on a machine without internet; our own init script carries
the response's nonce instead of FastAPI's un-nonced inline script.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from govconnect.web.page_security import relax_for_vendored_page
from govconnect.web.rendering import TEMPLATES, public_page

ASSETS_URL = "/docs/assets"
FAVICON = Path(__file__).parent / "static" / "favicon.ico"
router = APIRouter(include_in_schema=False)


def api_docs_assets() -> Path:
    """The folder of Swagger UI and ReDoc files shipped by the fastapi-offline wheel."""
    return Path(str(files("fastapi_offline") / "static"))


@router.get("/docs", response_class=HTMLResponse)
@public_page
def swagger_ui(request: Request) -> Response:
    """Swagger UI for /openapi.json, from local files."""
    config = {
        "url": request.app.openapi_url,
        "dom_id": "#swagger-ui",
        "layout": "BaseLayout",
        "deepLinking": True,
        "validatorUrl": None,  # Swagger's online validator badge would call another host
    }
    return TEMPLATES.TemplateResponse(
        request, "api_docs_swagger.html", {"title": request.app.title, "config": config, "assets": ASSETS_URL}
    )


@router.get("/redoc", response_class=HTMLResponse)
@public_page
def redoc(request: Request) -> Response:
    """ReDoc for /openapi.json, from local files."""
    # ReDoc's bundle inserts <style> elements it cannot label with our nonce, and searches in a blob: worker.
    relax_for_vendored_page(request)
    return TEMPLATES.TemplateResponse(
        request,
        "api_docs_redoc.html",
        {"title": request.app.title, "spec_url": request.app.openapi_url, "assets": ASSETS_URL},
    )


@router.get("/favicon.ico")
@public_page
def favicon() -> Response:
    """The site icon."""
    return FileResponse(FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})


def install_api_docs(app: FastAPI) -> None:
    """Serve /docs, /redoc, their files and /favicon.ico (create the app with docs_url=None, redoc_url=None)."""
    app.mount(ASSETS_URL, StaticFiles(directory=api_docs_assets()), name="api-docs-assets")
    app.include_router(router)
