"""Command line (Typer + Rich): operate a slotbroker database and server from a shell."""
