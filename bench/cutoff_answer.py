"""Does llama.cpp stop generating when the client gives up on an answer?

The agent gives a model call at most the run's remaining time (`timeout=`); when that runs out the client
closes the connection. If llama.cpp went on generating the abandoned answer, the cores would stay busy for
the scripts that follow. This starts the embedded model's server, asks for a long answer with a short
client timeout, then at once asks for an 8-token answer and times it: with the first answer cancelled the
second comes in about a second; otherwise it waits for the whole first answer. The request is a plain one,
as the agent sends it (a streamed request's timeout counts per read, so a client would not give up).

    .venv/bin/python bench/cutoff_answer.py [--out bench/results/cutoff_answer.json]
"""

from __future__ import annotations

import argparse
import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from runtime.local_model import LocalModelServer, resolve_gguf

LONG = "Write a long, detailed essay on gradient boosting: history, theory, practice, tuning. " * 3


def post(server: LocalModelServer, content: str, max_tokens: int, timeout: float) -> bytes:
    body = {"model": server.model_name, "max_tokens": max_tokens, "temperature": 0.0,
            "messages": [{"role": "user", "content": content}]}
    request = urllib.request.Request(f"{server.base_url}/chat/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def trial(server: LocalModelServer, cut_after_s: float) -> dict:
    started = time.monotonic()
    try:
        post(server, f"{time.time()} {LONG}", 1500, cut_after_s)
        cut = False
    except (TimeoutError, socket.timeout, urllib.error.URLError):
        cut = True
    gave_up = time.monotonic() - started
    asked = time.monotonic()
    post(server, "Say hi.", 8, 600)
    return {"first_answer_cut": cut, "client_gave_up_after_s": round(gave_up, 1),
            "next_answer_s": round(time.monotonic() - asked, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cut-after", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cutoff_answer.json")
    parser.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    args = parser.parse_args()
    server = LocalModelServer(resolve_gguf()).start()
    try:
        post(server, "Say hi.", 8, 600)  # warm-up
        asked = time.monotonic()
        post(server, "Say hi.", 8, 600)
        baseline = round(time.monotonic() - asked, 1)
        trials = [trial(server, args.cut_after) for _ in range(3)]
    finally:
        server.stop()
    result = {"what": __doc__.splitlines()[0], "short_answer_alone_s": baseline, "trials": trials,
              "threads": server.n_threads, "date": time.strftime("%Y-%m-%d"), "note": args.note}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
