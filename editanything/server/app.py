"""The API's FastAPI routes, on an app of their own (`editanything serve`) or added to gradio's (`ui --api`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse

from ..types import GenerationParams
from ..pipeline import Editor, EditRequest
from ..ui.locks import ModelLocks, share_cores
from . import sam, sdapi
from .config import ServerConfig
from .http import make_route_class
from .slots import Slots

TITLE = "editanything WebUI API"
OPENAPI_URL = "/docs/openapi.json"


@dataclasses.dataclass
class Api:
    """What every route shares: the Editor, the limits, the job slots and the route class."""

    editor: Editor
    config: ServerConfig
    slots: Slots
    route_class: type

    def model_name(self) -> str:
        """The generator's name, as /sd-models titles it (building it loads no weights)."""
        return str(getattr(self.editor.generator, "name", "classical"))

    @staticmethod
    def edit_request(mask: np.ndarray, params: GenerationParams, *, feather: float, full_image: bool) -> EditRequest:
        """An edit of exactly `mask`: not grown, feathered inside it, so every pixel outside stays as sent."""
        return EditRequest(mode="replace", mask=mask, params=params, grow=0.0, feather=float(feather),
                           full_image=full_image)


def add_api(app: FastAPI, editor: Editor, config: ServerConfig = ServerConfig(), *,
            locks: ModelLocks | None = None) -> Api:
    """Add /sdapi/v1, /sam and the API's /docs to `app` (it may be running: no middleware is added).

    `locks`: the model locks of a UI on the same Editor, so the page and the API take turns."""
    share_cores()  # its selection and generation requests run side by side, as the UI's do
    api = Api(editor, config, Slots(locks or ModelLocks(editor), config.queue_size), make_route_class(config))
    routers = [sdapi.router(api), sam.router(api)]
    for r in routers:
        app.include_router(r)
    app.include_router(_docs(api, [route for r in routers for route in r.routes]))
    return api


def create_app(editor: Editor, config: ServerConfig = ServerConfig()) -> FastAPI:
    """The API alone (`editanything serve`)."""
    app = FastAPI(title=TITLE, docs_url=None, redoc_url=None, openapi_url=None)
    add_api(app, editor, config)
    return app


def _docs(api: Api, routes: list[Any]) -> APIRouter:
    r = APIRouter(route_class=api.route_class, include_in_schema=False)
    schema: dict[str, Any] = {}

    @r.get("/docs")
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=OPENAPI_URL, title=TITLE)

    @r.get(OPENAPI_URL)
    def openapi() -> JSONResponse:
        if not schema:
            schema.update(get_openapi(title=TITLE, version="1", routes=routes,
                                      description="The AUTOMATIC1111 WebUI's /sdapi/v1 and the Segment Anything "
                                                  "extension's /sam routes, over editanything's Editor."))
        return JSONResponse(schema)

    return r
