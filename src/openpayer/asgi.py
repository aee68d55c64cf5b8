"""ASGI entry point for uvicorn and other servers: `openpayer.asgi:app`.

Logging is configured here (JSON lines, or readable at a terminal; `OPENPAYER_LOG_*`), so every server
process that imports the application logs the same way."""

from openpayer.app import create_app
from openpayer.config import get_settings
from openpayer.observability.logs import configure_logging

_settings = get_settings()
configure_logging(_settings.log_level, _settings.log_format)
app = create_app(_settings)
