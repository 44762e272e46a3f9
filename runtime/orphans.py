"""Generated scripts that outlived the agent process which started them, stopped before their run continues.

A script runs in its own session (so that a timeout can kill its whole process tree), so a SIGKILL of the
agent does not reach it. Under bubblewrap (``--die-with-parent``) it dies anyway; as a plain subprocess it
runs on, unsupervised, and a resumed run would start the same script in the same attempt folder beside it
(both writing stdout.txt, submission.csv). The sandbox tags every script process with ``RUN_TAG_VAR`` and
points its HOME at its attempt folder, ``<workspace_root>/<task>/<run id>/run<k>/attempts/<key>``: that is
how the scripts of one run are found. A script whose agent is still alive (an ancestor runs the CLI) is
left alone.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil

from runtime.sandbox import RUN_TAG_VAR

AGENT_MARKERS = ("graph.cli", "mlestar")


def _belongs_to(env: dict, root: Path, run_id: str) -> bool:
    if RUN_TAG_VAR not in env or "HOME" not in env:
        return False
    try:
        parts = Path(env["HOME"]).relative_to(root).parts
    except ValueError:
        return False
    return len(parts) > 2 and parts[1] == run_id and "attempts" in parts


def _has_live_agent(proc: psutil.Process) -> bool:
    """An ancestor is an agent process (the CLI) that still supervises this script."""
    try:
        for parent in proc.parents():
            cmdline = " ".join(parent.cmdline())
            if parent.pid == os.getpid() or any(marker in cmdline for marker in AGENT_MARKERS):
                return True
    except psutil.Error:
        return False
    return False


def orphaned_scripts(workspace_root: str | os.PathLike[str], run_id: str) -> list[psutil.Process]:
    """Live script processes of `run_id` (in any of its pipeline runs) that no agent process supervises."""
    root = Path(workspace_root).resolve()
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid == os.getpid() or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if _belongs_to(proc.environ(), root, run_id) and not _has_live_agent(proc):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def reap_orphans(workspace_root: str | os.PathLike[str], run_id: str) -> int:
    """SIGKILL the orphaned scripts of `run_id` and their process groups; returns how many were found."""
    orphans = orphaned_scripts(workspace_root, run_id)
    own_group = os.getpgrp()
    for proc in orphans:
        try:
            group = os.getpgid(proc.pid)
            if group != own_group and group == proc.pid:  # the script leads its own group: take its children too
                os.killpg(group, signal.SIGKILL)
            proc.kill()  # psutil checks the creation time: a recycled pid is never hit
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    psutil.wait_procs(orphans, timeout=5)
    return len(orphans)
