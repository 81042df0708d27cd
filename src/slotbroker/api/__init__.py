"""HTTP adapter (FastAPI). Parses, authenticates, calls a service, serialises. No business rules."""
