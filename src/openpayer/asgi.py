"""ASGI entry point for uvicorn and other servers: `openpayer.asgi:app`.

Logging is configured here (JSON lines, or readable at a terminal; `OPENPAYER_LOG_*`), so every server
process that imports the application logs the same way. So is the cyclic garbage collector: what a server
process builds at start-up (the application, the FHIR definitions, the search plans) lives as long as the
process, so it is frozen out of the collector's passes, and the young generation is collected every 7,000
allocations instead of 700. Under the token benchmark's load that took the collector from 2–4 % of the
server's CPU to nothing a profile shows (docs/performance.md, token endpoint, eighteenth session).
"""

import gc

from openpayer.app import create_app
from openpayer.config import get_settings
from openpayer.observability.logs import configure_logging

YOUNG_GENERATION_THRESHOLD = 7_000

_settings = get_settings()
configure_logging(_settings.log_level, _settings.log_format)
app = create_app(_settings)
gc.freeze()
gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])
