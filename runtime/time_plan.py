"""The time plan: how long a step is expected to take, from what the journal measured on this machine.

A model call takes about ``prompt_tokens / prompt_speed + answer_tokens / answer_speed`` seconds; both
speeds are fitted (least squares, non-negative) over the model's latest calls, so a busy machine's slower
speeds show up in the plan within a few calls. A script takes about as long as this run's scored scripts
took (their median). A step that is not expected to finish in the time left is skipped rather than
started and lost.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

#: Characters per prompt token (code and English mixed; Qwen and GPT tokenizers both give about 3.5).
CHARS_PER_TOKEN = 3.5
MIN_SAMPLES = 3
#: How many times faster a prompt token is read than an answer token is written, assumed when the samples
#: cannot tell the two apart (llama.cpp on 2 CPU cores, measured: 72 against 22 tokens per second).
PROMPT_SPEEDUP = 3.0


@dataclass(frozen=True)
class Speed:
    """Tokens per second of one model, prompt and answer separately."""

    prompt_tps: float
    answer_tps: float
    samples: int


def fit_speed(calls: list[tuple[int, int, float]]) -> Speed | None:
    """Speeds from (tokens_in, tokens_out, latency_s) samples; None with too few samples to tell."""
    if len(calls) < MIN_SAMPLES:
        return None
    x = np.array([[t_in, t_out] for t_in, t_out, _ in calls], dtype=float)
    y = np.array([latency for _, _, latency in calls], dtype=float)
    coef, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    if rank < 2 or coef[0] <= 0 or coef[1] <= 0:  # alike or noisy samples: assume the usual ratio
        per_answer_token = float(y.sum() / (x[:, 1].sum() + x[:, 0].sum() / PROMPT_SPEEDUP))
        coef = np.array([per_answer_token / PROMPT_SPEEDUP, per_answer_token])
    return Speed(prompt_tps=1 / coef[0], answer_tps=1 / coef[1], samples=len(calls))


def prompt_tokens(prompt: str) -> int:
    return int(len(prompt) / CHARS_PER_TOKEN) + 1


def expected_answer_tokens(calls: list[tuple[int, int, float, str]], node: str) -> float | None:
    """Median answer length of the node's earlier calls, else of every call; None without any."""
    same = [t_out for _, t_out, _, n in calls if n == node]
    pool = same or [t_out for _, t_out, _, _ in calls]
    return statistics.median(pool) if pool else None


def expected_call_s(calls: list[tuple[int, int, float, str]], node: str, prompt: str) -> float | None:
    """Expected seconds of one answer, or None while the journal has too little to say."""
    speed = fit_speed([c[:3] for c in calls])
    answer = expected_answer_tokens(calls, node)
    if speed is None or answer is None:
        return None
    return prompt_tokens(prompt) / speed.prompt_tps + answer / speed.answer_tps


def expected_script_s(durations: list[float]) -> float | None:
    return statistics.median(durations) if durations else None
