"""The MCP SDK is imported by the first ``/mcp`` request, not by every app start: most processes (the
CLI's server commands, workers, tests) never serve ``/mcp``, and the import cost each of them about
half a second.

The regression: ``api/mcp_endpoint.py`` imported the SDK and the tools at module level, so
``create_app`` (and even ``import slotbroker.api.app``) loaded ``mcp``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

PROBE = """
import json, sys
from fastapi.testclient import TestClient
from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.services.access.tokens import Role, TokenService

app = create_app(Settings(database_url=sys.argv[1], migrate_on_start=True, planner_workers=0,
                          event_loop_interval_s=0))
seen = {}
with TestClient(app) as client:
    secret = TokenService(app.state.services.db).create(project="p", role=Role.USER)
    auth = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/providers", headers=auth).status_code == 200
    seen["after_start"] = "mcp" in sys.modules
    hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {**auth, "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
    r = client.post("/mcp", json=hello, headers=headers)
    seen["mcp_status"] = r.status_code
    seen["tools"] = len(r.json().get("result", {}).get("tools", [])) if r.status_code == 200 else r.text
    seen["after_mcp"] = "mcp" in sys.modules
print(json.dumps(seen))
"""


def test_app_start_does_not_import_the_mcp_sdk_until_mcp_is_asked_for(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    run = subprocess.run(
        [sys.executable, "-c", PROBE, f"sqlite:///{tmp_path}/lazy.db"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["after_start"] is False
    assert seen["mcp_status"] == 200, seen
    assert isinstance(seen["tools"], int), seen
    assert seen["tools"] > 5
    assert seen["after_mcp"] is True
