"""The `openpayer` command line (Typer): one module per command group."""
