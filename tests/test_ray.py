"""`mlestar batch` on a local Ray cluster (`ray.init(num_cpus=2)`) with the scripted model: two tasks at once;
a worker SIGKILLed mid-run is retried by Ray, resumes from the store and ends as an uninterrupted run does,
without running a finished script or asking a finished question twice."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest

from graph.batch import BatchResult, plan_batch, run_batch
from graph.cluster import Resources, read_ray_flag, resources_for, start_ray
from graph.context import ConfigError
from runtime.journal import open_journal
from tests.conftest import EXAMPLES, ROOT, SCRIPTED, cli

if os.environ.get("CI"):  # .ci/run installs the scale extra: there a missing Ray is a failure, not a skip
    import ray
else:
    ray = pytest.importorskip("ray", reason="Ray is not installed here: pip install -e '.[scale]'")

TASKS = [EXAMPLES / "concrete", EXAMPLES / "penguins"]
# One lane of two candidates (one needs the debugger), one refinement step: ablation, then block rewrites.
SETTINGS = {"num_lanes": 1, "num_candidates": 2, "refine_steps": 1, "inner_steps": 2, "ensemble_rounds": 0,
            "debug_rounds": 1, "floor_approaches": 2, **{f"{role}_model": SCRIPTED for role in
                                                       ("coder", "planner", "reviewer", "enhancer")}}
# Inside the evaluate node, after its first script failed and before the debugger's fix: the node runs again
# on resume and must take that script's result and the model's answers from the journal.
DIES_AT = "fix a failing script"


@pytest.fixture(scope="module")
def die_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("die")


@pytest.fixture(scope="module")
def cluster(die_dir):
    """A local cluster of 2 CPUs; its workers inherit $SCRIPTED_DIE_DIR (the scripted model's kill switch)."""
    os.environ["SCRIPTED_DIE_DIR"] = str(die_dir)
    previous = os.getcwd()
    os.chdir(ROOT)  # workers start in the driver's folder: the scripted model's module is found there
    start_ray(None, cpus=2)
    yield
    ray.shutdown()
    os.chdir(previous)
    del os.environ["SCRIPTED_DIE_DIR"]


def run_batch_of(tmp_path: Path, checkpoints: str, journal: str, batch_id: str) -> dict[str, BatchResult]:
    jobs = plan_batch(TASKS, batch_id, {**SETTINGS, "workspace_root": str(tmp_path / "ws")}, checkpoints, journal)
    results = run_batch(jobs, lambda result: None, ray=True, resources=Resources(cpus=1, memory_mb=512, retries=2))
    return {result.task: result for result in results}


@pytest.mark.slow
@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_a_worker_killed_mid_run_is_retried_and_ends_as_an_uninterrupted_run(cluster, die_dir, tmp_path, store,
                                                                              request):
    """On SQLite files (one machine) and on a PostgreSQL database (the shared store of a cluster)."""
    checkpoints, journal_at = ((str(tmp_path / "cp.db"), str(tmp_path / "journal.db")) if store == "sqlite" else
                               (request.getfixturevalue("postgres_url"),) * 2)
    batch = functools.partial(run_batch_of, tmp_path, checkpoints, journal_at)
    reference = batch("clean")
    assert {r.status for r in reference.values()} == {"done"}, reference
    assert len({r.host for r in reference.values()}) == 2  # two workers at once

    (die_dir / DIES_AT.replace(" ", "_")).touch()
    killed = batch("killed")
    assert not (die_dir / DIES_AT.replace(" ", "_")).exists(), "no worker died"
    journal = open_journal(journal_at)
    for task, result in killed.items():
        assert result.status == "done", result
        assert result.best_score == reference[task].best_score
        assert Path(result.submission).read_bytes() == Path(reference[task].submission).read_bytes()
        assert result.executions == reference[task].executions
        # no finished script ran twice, no question was asked twice
        assert journal.repeated_work(result.run_id) == {"executions": 0, "answers": 0}
    # The retried run took its finished work from the journal; the clean runs never needed to.
    assert sum(r.executions_reused for r in killed.values()) >= 1
    assert sum(r.answers_reused for r in killed.values()) >= 1
    assert all(r.executions_reused == 0 for r in reference.values())

    again = batch("killed")  # the same batch again: everything is done, nothing runs
    assert {task: r.best_score for task, r in again.items()} == {task: r.best_score for task, r in killed.items()}
    assert all(r.executions == killed[task].executions for task, r in again.items())


def test_resources_declare_a_gpu_for_hf_models_and_memory_in_bytes():
    assert resources_for(["local", "openai:gpt-4o"], 2, 1024).ray_options() == {
        "num_cpus": 2, "num_gpus": 0.0, "max_retries": 3, "retry_exceptions": False, "memory": 2**30}
    assert resources_for(["hf:/models/qwen"], 1, 0).ray_options()["num_gpus"] == 1.0
    assert "memory" not in resources_for(["local"], 1, 0).ray_options()
    with pytest.raises(ConfigError, match="more than 0 CPUs"):
        resources_for(["local"], 0, 0)


def test_ray_flag_alone_means_a_local_cluster_and_keeps_an_address():
    task = str(EXAMPLES / "concrete")
    assert read_ray_flag(["batch", task, "--ray"]) == ["batch", task, "--ray=local"]
    assert read_ray_flag(["batch", "--ray", task]) == ["batch", "--ray=local", task]
    assert read_ray_flag(["batch", "--ray", "--set", "x=1"]) == ["batch", "--ray=local", "--set", "x=1"]
    assert read_ray_flag(["batch", task, "--ray", "ray://head:10001"]) == ["batch", task, "--ray", "ray://head:10001"]


def test_a_batch_refuses_two_tasks_of_one_name_and_a_broken_folder_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="Two task folders are named concrete"):
        plan_batch([EXAMPLES / "concrete", EXAMPLES / "concrete"], "b", {})
    broken = tmp_path / "broken"
    broken.mkdir()
    done = cli("batch", str(EXAMPLES / "concrete"), str(broken), "--set", f"workspace_root={tmp_path / 'ws'}",
               "--checkpoints", str(tmp_path / "cp.db"), tmp_path=tmp_path)
    assert done.returncode == 2 and "broken" in done.stdout
    assert not (tmp_path / "cp.db").exists() and not (tmp_path / "ws").exists()


@pytest.mark.slow
def test_bench_on_ray_records_every_attempt_as_it_ends_and_a_second_call_reuses_them(tmp_path):
    out = tmp_path / "suite"
    command = ["bench", str(EXAMPLES), "--systems", "trivial,lgbm_default", "--tasks", "concrete,penguins",
               "--budget", "1m", "--out", str(out), "--ray", "--ray-cpus", "2", "--memory-mb", "512"]
    first = cli(*command, tmp_path=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "local Ray cluster (2 CPUs)" in first.stdout
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted((r["task"], r["system"]) for r in records) == [
        ("concrete", "lgbm_default"), ("concrete", "trivial"), ("penguins", "lgbm_default"), ("penguins", "trivial")]
    assert all(r["valid"] for r in records)
    assert (out / "table.md").is_file() and (out / "scores.png").is_file()

    again = cli(*command, tmp_path=tmp_path)
    assert again.returncode == 0 and again.stdout.count("(recorded)") == 4
    assert len((out / "results.jsonl").read_text().splitlines()) == 4
