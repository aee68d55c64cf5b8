"""FHIR search: the parameter registry, index extraction and the SQL query builder."""
