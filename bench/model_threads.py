"""Answer and prompt speed of the embedded model by inference threads, on a quiet machine and with one core busy.

    .venv/bin/python bench/model_threads.py [--runs 3] [--out bench/results/model_threads.json]

For each (load, threads) it starts llama.cpp's server with that many threads, then sends `--runs` requests of
an ~860-token prompt (a fresh prefix each time, so nothing comes from the prompt cache) asking for a
120-token answer, and records llama.cpp's own timings: prompt tokens/s and answer tokens/s, separately.
"One core busy" is a spinning Python process started before the server. Run it with nothing else of
yours on the machine: the figures are only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from runtime.local_model import LocalModelServer, free_cores, resolve_gguf

PROMPT = ("## Job: write a solution script\nThe data has numeric and categorical columns; the target is binary. "
          "Write a LightGBM training script with a stratified 80/20 split, early stopping and the validation "
          "accuracy printed at the end. " * 14)


def ask(server: LocalModelServer, run: int) -> dict:
    body = {"model": server.model_name, "max_tokens": 120, "temperature": 0.0,
            "messages": [{"role": "user", "content": f"Request {run} at {time.time()}.\n{PROMPT}"}]}
    request = urllib.request.Request(f"{server.base_url}/chat/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        reply = json.load(response)
    timings = reply.get("timings", {})
    return {"prompt_tokens": timings.get("prompt_n"), "prompt_tps": timings.get("prompt_per_second"),
            "answer_tokens": timings.get("predicted_n"), "answer_tps": timings.get("predicted_per_second"),
            "cached_tokens": timings.get("cache_n"), "usage": reply.get("usage")}


def measure(threads: int, busy: bool, runs: int) -> dict:
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        time.sleep(1.0)
        chosen = free_cores(sample_s=1.0)
        server = LocalModelServer(resolve_gguf(), n_threads=threads).start()
        try:
            samples = [ask(server, run) for run in range(runs)]
        finally:
            server.stop()
    finally:
        if spinner:
            spinner.kill()
            spinner.wait()
    return {"load": "one core busy" if busy else "quiet", "threads": threads, "free_cores_chose": chosen,
            "prompt_tps": [s["prompt_tps"] for s in samples], "answer_tps": [s["answer_tps"] for s in samples],
            "median_prompt_tps": statistics.median(s["prompt_tps"] for s in samples),
            "median_answer_tps": statistics.median(s["answer_tps"] for s in samples), "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/model_threads.json"))
    args = parser.parse_args()
    results = [measure(threads, busy, args.runs) for busy in (False, True) for threads in (1, 2)]
    quiet = next(r for r in results if r["load"] == "quiet" and r["threads"] == os.cpu_count())
    for r in results:
        r["answer_share_of_quiet"] = round(r["median_answer_tps"] / quiet["median_answer_tps"], 3)
        print(f"{r['load']:14} threads={r['threads']}  prompt {r['median_prompt_tps']:6.1f} tok/s  answer "
              f"{r['median_answer_tps']:5.1f} tok/s ({r['answer_share_of_quiet']:.0%} of quiet)  "
              f"free_cores() chose {r['free_cores_chose']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpu_count": os.cpu_count(), "runs": args.runs, "results": results}, indent=2))


if __name__ == "__main__":
    main()
