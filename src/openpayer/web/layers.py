"""FastAPI with outer layers: ASGI middleware that wraps the whole application, Starlette's error handler
included, so that even the 500 it renders carries the request id and the security headers, and its time is
measured. (`add_middleware` places middleware inside that handler.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp


class LayeredApp(FastAPI):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outer_layers: list[Callable[[ASGIApp], ASGIApp]] = []

    def add_outer_layer(self, layer: Callable[[ASGIApp], ASGIApp]) -> None:
        """Wrap the application in `layer`; the last added is the outermost."""
        if self.middleware_stack is not None:
            raise RuntimeError("Cannot add a layer after the application has started")
        self.outer_layers.append(layer)

    def build_middleware_stack(self) -> ASGIApp:
        app = super().build_middleware_stack()
        for layer in self.outer_layers:
            app = layer(app)
        return app
