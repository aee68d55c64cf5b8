"""The FHIR R4 (4.0.1) engine: storage, search, validation and operations, free of web concerns."""
