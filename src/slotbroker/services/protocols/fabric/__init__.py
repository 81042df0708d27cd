"""FABRIC compatibility: the reports API (``/calendar``) and the orchestrator's ``/resources`` paths."""
