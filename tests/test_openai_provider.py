"""The `openai` provider against a real local HTTP server: retries, quotas that pause a run, token accounting."""

from __future__ import annotations

import time

import pytest
from langchain_core.messages import HumanMessage

from graph.checkpoint import open_checkpointer
from graph.pipeline import build_graph
from nodes.llm import ask
from runtime.budget import BudgetExhausted
from runtime.journal import open_journal
from runtime.models import make_chat_model
from runtime.rate_limit import ModelUnavailable, QuotaExhausted, RequestLimit, limit_for, parse_rate_limits
from runtime.task import grade_submission, load_task
from tests.conftest import EXAMPLES, cli, paths, scripted_context
from tests.fake_openai_server import FakeOpenAIServer


def echo(messages):
    return "ok " + messages[-1].content


@pytest.fixture
def server():
    with FakeOpenAIServer() as fake:
        yield fake


def openai_context(tmp_path, server, **overrides):
    spec = server.spec()
    settings = dict(coder_model=spec, planner_model=spec, reviewer_model=spec, enhancer_model=spec,
                    num_lanes=1, num_candidates=1, refine_steps=1, inner_steps=1, ensemble_rounds=0)
    settings.update(overrides)
    return scripted_context(tmp_path, **settings)


def test_429_and_503_are_retried_and_usage_is_the_servers():
    with FakeOpenAIServer(respond=echo) as fake:
        fake.fail_next = [429, 503, 429]
        model = make_chat_model(fake.spec(), retries=3, max_tokens=50)
        reply = model.invoke([HumanMessage("three words here")])
    assert reply.content == "ok three words here"
    assert fake.requests == 4 and fake.answers == 1
    assert reply.usage_metadata["input_tokens"] == 3 == fake.prompt_tokens
    assert reply.usage_metadata["output_tokens"] == 4 == fake.completion_tokens


def test_refusals_beyond_the_retries_pause_instead_of_failing(tmp_path):
    with FakeOpenAIServer(respond=echo) as fake:
        ctx = openai_context(tmp_path, fake, model_retries=1)
        fake.fail_next = [429, 429]
        with pytest.raises(QuotaExhausted, match="after all retries.*HTTP 429"):
            ask(ctx, run_id="r", node="n", role="coder", call_key="k", prompt="hello")
        fake.fail_next = [503, 503]
        with pytest.raises(ModelUnavailable, match="unreachable or failing"):
            ask(ctx, run_id="r", node="n", role="coder", call_key="k", prompt="hello")
        assert fake.requests == 4  # 1 try + 1 retry, twice
        assert ask(ctx, run_id="r", node="n", role="coder", call_key="k", prompt="hello") == "ok hello"


def test_unreachable_server_pauses(tmp_path):
    with FakeOpenAIServer(respond=echo) as fake:
        spec = fake.spec()
    ctx = scripted_context(tmp_path, coder_model=spec, model_retries=0)
    with pytest.raises(ModelUnavailable, match="check the server"):
        ask(ctx, run_id="r", node="n", role="coder", call_key="k", prompt="hello")


def test_rate_limit_parsing():
    limits = parse_rate_limits(" openai=20/50, openai:gpt-4o=500/0 ")
    assert limits == {"openai": RequestLimit("openai", 20, 50), "openai:gpt-4o": RequestLimit("openai:gpt-4o", 500, 0)}
    assert limit_for("openai:gpt-4o", limits).per_minute == 500
    assert limit_for("openai:other", limits).per_day == 50
    assert limit_for("local", limits) is None
    for bad in ("openai=20", "openai=a/b", "=1/2", "openai=1/2,openai=3/4"):
        with pytest.raises(ValueError, match="KEY=RPM/RPD|given twice"):
            parse_rate_limits(bad)


def test_daily_quota_counts_journal_requests_and_spares_reused_answers(tmp_path):
    with FakeOpenAIServer(respond=echo) as fake:
        ctx = openai_context(tmp_path, fake, rate_limits="openai=0/2")
        for i in range(2):
            ask(ctx, run_id="r", node="n", role="coder", call_key=f"k{i}", prompt=f"p{i}")
        assert ask(ctx, run_id="r", node="n", role="coder", call_key="k0", prompt="p0") == "ok p0"  # reused
        with pytest.raises(QuotaExhausted, match="daily quota of 2 requests for openai is spent.*allowed at"):
            ask(ctx, run_id="r", node="n", role="coder", call_key="k2", prompt="p2")
        assert fake.requests == 2  # the refused call never reached the server


def test_per_minute_limit_spaces_requests(tmp_path):
    import time

    with FakeOpenAIServer(respond=echo) as fake:
        ctx = openai_context(tmp_path, fake, rate_limits=f"{fake.spec()}=600/0")  # one request per 0.1 s
        started = time.monotonic()
        for i in range(4):
            ask(ctx, run_id="r", node="n", role="coder", call_key=f"k{i}", prompt=f"p{i}")
        assert time.monotonic() - started >= 0.3


def run_pipeline(ctx, tmp_path, graph_input):
    graph = build_graph(open_checkpointer(tmp_path / "checkpoints.db"))
    config = {"configurable": {"thread_id": "r1"}, "recursion_limit": 500}
    graph.invoke(graph_input, config, context=ctx, durability="sync")
    return graph, config


@pytest.mark.slow
def test_pipeline_over_http_pauses_on_quota_and_resumes_without_redoing_calls(tmp_path, server):
    """A provider quota spent mid-run leaves a resumable thread; resumed, it finishes with a valid
    submission, no answered request is sent again, and the journal's tokens are the server's."""
    ctx = openai_context(tmp_path, server)
    server.quota = 4
    with pytest.raises(QuotaExhausted):
        run_pipeline(ctx, tmp_path, {"task_dir": str(EXAMPLES / "titanic"), "run_id": "r1"})
    assert server.answers == 4

    server.quota = None  # the quota resets
    graph, config = run_pipeline(ctx, tmp_path, None)
    state = graph.get_state(config).values
    assert state["status"] == "done"
    assert grade_submission(load_task(EXAMPLES / "titanic"), state["submission"]["path"]).valid

    journal = open_journal(ctx.journal_path)
    usage = journal.usage("r1")
    assert usage["model_calls"] == server.answers  # each answered request recorded once, none re-sent
    assert usage["tokens_in"] == server.prompt_tokens and usage["tokens_out"] == server.completion_tokens
    assert all(body["model"] == "fake-coder" for body in server.bodies)


@pytest.mark.slow
def test_cli_pauses_on_a_spent_daily_quota_and_resumes_with_a_new_limit(tmp_path, server):
    """`mlestar run` stops with exit code 3 and a clear reason; `resume --set` continues to a submission."""

    small = ["--set", "num_lanes=1", "--set", "num_candidates=1", "--set", "refine_steps=0",
             "--set", "ensemble_rounds=0", "--set", "debug_rounds=1"]
    run = cli("run", str(EXAMPLES / "titanic"), "--run-id", "q1", "--model", server.spec(), *small,
              "--set", "rate_limits=openai=0/3", *paths(tmp_path), tmp_path=tmp_path)
    assert run.returncode == 3, run.stdout + run.stderr
    assert "Paused" in run.stdout and "daily quota of 3 requests for openai is spent" in run.stdout
    assert "mlestar resume q1" in run.stdout
    assert server.answers == 3
    journal = open_journal(str(tmp_path / "journal.db"))
    assert journal.get_run("q1")["status"] == "paused"

    resumed = cli("resume", "q1", "--set", "rate_limits=openai=0/1000", "--journal", str(tmp_path / "journal.db"),
                  "--checkpoints", str(tmp_path / "cp.db"), tmp_path=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Best submission:" in resumed.stdout
    assert journal.get_run("q1")["status"] == "done"
    assert journal.usage("q1")["model_calls"] == server.answers


def test_a_long_answer_is_cut_off_when_the_run_time_budget_ends(tmp_path):
    """A time budget of minutes must not be overrun by one slow answer: the call ends with the budget and the
    run goes on to submit (BudgetExhausted), it is not paused as if the server had failed."""
    answers = []

    def slow(messages):
        answers.append(1)
        time.sleep(8 if len(answers) == 1 else 1)
        return "late"

    with FakeOpenAIServer(respond=slow) as fake:
        ctx = openai_context(tmp_path, fake, model_retries=0, run_time_budget_s=3)
        open_journal(ctx.journal_path).upsert_run("r", status="running")
        started = time.monotonic()
        with pytest.raises(BudgetExhausted, match="ended during"):
            ask(ctx, run_id="r", node="n", role="coder", call_key="k", prompt="hello")
        assert time.monotonic() - started < 6
        # the Enhancer works between runs, outside any run's budget: it waits for its answer
        assert ask(ctx, run_id="r", node="enhance", role="enhancer", call_key="e", prompt="hello") == "late"
        assert open_journal(ctx.journal_path).run_usage("r").calls == 1


@pytest.mark.slow
def test_an_answer_slower_than_model_timeout_pauses_and_a_larger_timeout_gets_it(tmp_path):
    """A slow model (a busy CPU) is told apart from a spent budget: the run pauses naming model_timeout_s, and
    resuming with a larger timeout receives the answer."""
    def slow(messages):
        time.sleep(12)
        return "slow but fine"

    with FakeOpenAIServer(respond=slow) as fake:
        ctx = openai_context(tmp_path, fake, model_retries=0, model_timeout_s=10, run_time_budget_s=3600)
        open_journal(ctx.journal_path).upsert_run("r", status="running")
        with pytest.raises(ModelUnavailable, match="larger model_timeout_s"):
            ask(ctx, run_id="r", node="n", role="coder", call_key="k", prompt="hello")
        patient = openai_context(tmp_path, fake, model_retries=0, model_timeout_s=30, run_time_budget_s=3600)
        assert ask(patient, run_id="r", node="n", role="coder", call_key="k", prompt="hello") == "slow but fine"
