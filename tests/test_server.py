"""`langgraph dev` loads the exported pipeline graph offline and serves it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

CLI = Path(sys.executable).with_name("langgraph")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not CLI.exists(), reason="langgraph-cli is part of the dev extra installed by scripts/setup.sh")
def test_langgraph_dev_serves_the_pipeline_graph(tmp_path):
    project = tmp_path / "project"  # a copy, so the server's own files never land in the repository
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".venv", ".git", "workspace", "checkpoints",
                                                                 "bench", "tests", "examples", "__pycache__"))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(project)}
    server = subprocess.Popen([str(CLI), "dev", "--no-browser", "--no-reload", "--port", str(port),
                               "--host", "127.0.0.1"], cwd=project, env=env, start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        graphs = {a["graph_id"] for a in httpx.post(f"{base}/assistants/search", json={}, timeout=10).json()}
        assert graphs == {"pipeline", "mle_star"}
        assistants = httpx.post(f"{base}/assistants/search", json={"graph_id": "pipeline"}, timeout=10).json()
        drawn = httpx.get(f"{base}/assistants/{assistants[0]['assistant_id']}/graph", params={"xray": 1},
                          timeout=10).json()
        names = {node["id"] for node in drawn["nodes"]}
        assert {"prepare", "search", "ensemble", "submit"} <= names
        assert any("evaluate" in n for n in names) and any("refine" in n for n in names)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
