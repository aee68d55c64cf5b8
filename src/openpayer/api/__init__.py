"""HTTP routes for the FHIR bases: thin, they parse, call `openpayer.fhir`, and render."""
