"""The web portal: static HTML, CSS and plain ES modules served at ``/`` by the API's own app.

It is an adapter like the CLI: everything it shows or changes goes through the public ``/v1`` API with
the user's Bearer token, so it holds no business rule and proves the API is enough (docs/portal.md).
"""

from slotbroker.portal.router import STATIC_DIR, mount

__all__ = ["STATIC_DIR", "mount"]
