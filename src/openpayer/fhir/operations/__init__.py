"""FHIR operations, one module per `$operation`, each declaring its canonical OperationDefinition."""
