"""An MCP server over the public API, so agents book capacity like any other client (docs/mcp.md).

Tools, resources and a prompt (``server.build_server``) call the API with the caller's token through
``slotbroker.client``; ``api/mcp_endpoint.py`` serves them at ``/mcp`` (streamable HTTP) and
``cli/mcp.py`` on stdio (``slotbroker mcp``).
"""
