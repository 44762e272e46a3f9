"""Serve a model spec's OpenAI endpoint from a process of its own: `python -m bench.serve_model SPEC`.

Prints one JSON line {"base_url", "model", "api_key"} once the endpoint answers, then serves until killed.
The harness runs one per AIDE attempt and kills it afterwards: a competitor killed at its budget leaves its
last request unanswered, and llama.cpp would go on generating it during the next system's attempt.
"""

from __future__ import annotations

import json
import signal
import sys


def main(spec: str) -> None:
    from bench.systems import endpoint_for

    endpoint = endpoint_for(spec)
    print(json.dumps({"base_url": endpoint.base_url, "model": endpoint.model, "api_key": endpoint.api_key}),
          flush=True)
    signal.pause()


if __name__ == "__main__":
    main(sys.argv[1])
