"""ASGI entry point for uvicorn and other servers: `openpayer.asgi:app`."""

from openpayer.app import create_app

app = create_app()
