"""What an operator sees of the running platform: request ids, structured logs, Prometheus metrics and the
readiness checks.

A low layer: it may be imported by anything above `db`/`config` and imports nothing of the domains
(`oauth`, `api`, `fhir`, ...). Domains report to it (`context.annotate(client_id=...)`, a counter in
`metrics`); the composition root wires its middleware and endpoints onto the application.
"""
