"""Benchmark: the recorded ablation answers of real runs, parsed again by today's parser (no model, no scripts).

The embedded 1.5B coder is asked for 2-3 variants of a script as SEARCH/REPLACE edits. In the 20-minute suite it
mostly wrote whole scripts, or edits whose SEARCH lines retyped a comment, and every answer was refused and
re-asked. This replays each recorded `ablate` answer of the given journals through `runtime.parsing.
variants_parser` against the script its prompt showed, and counts the answers that now give variants, and the
variants that are whole runnable scripts (they write val_predictions.csv).

    .venv/bin/python bench/ablation_replay.py bench/results/suite-20m-v2/journals/*.db
    # writes bench/results/ablation_replay.json
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runtime.parsing import AnswerError, variants_parser  # noqa: E402

SCRIPT_BLOCK = "Script:"


def shown_script(prompt: str) -> str:
    """The script an ablation prompt showed: the first python block after its "Script:" line."""
    start = prompt.index("```python\n", prompt.index(SCRIPT_BLOCK)) + len("```python\n")
    return prompt[start:prompt.index("\n```", start)] + "\n"


def replay(journal: Path) -> list[dict]:
    with sqlite3.connect(journal) as db:
        rows = db.execute("SELECT call_key, prompt, answer, tokens_out, latency_s FROM model_calls "
                          "WHERE node = 'ablate' ORDER BY id").fetchall()
    found = []
    for key, prompt, answer, tokens_out, latency in rows:
        code = shown_script(prompt)
        record = {"journal": journal.stem, "call_key": key, "answer_tokens": tokens_out, "latency_s": round(latency)}
        try:
            variants = variants_parser(code)(answer)
            record["variants"] = [{"name": name, "lines": len(script.splitlines()),
                                   "saves_predictions": "val_predictions.csv" in script} for name, script in variants]
        except AnswerError as exc:
            record["refused"] = str(exc)[:200]
        found.append(record)
        print(json.dumps(record), flush=True)
    return found


def main(paths: list[str]) -> None:
    answers = [r for path in paths for r in replay(Path(path))]
    usable = [a for a in answers if a.get("variants")]
    summary = {"answers": len(answers), "usable": len(usable),
               "first_answers": sum(1 for a in answers if a["call_key"].endswith("#0")),
               "first_answers_usable": sum(1 for a in usable if a["call_key"].endswith("#0")),
               "variants": sum(len(a["variants"]) for a in usable),
               "variants_saving_predictions": sum(v["saves_predictions"] for a in usable for v in a["variants"])}
    print(json.dumps(summary))
    out = {"date": time.strftime("%Y-%m-%d"), "journals": paths, "summary": summary, "answers": answers}
    (ROOT / "bench" / "results" / "ablation_replay.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
