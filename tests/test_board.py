"""The submission board keeps the best validated submission so far, atomically, with its history."""

from __future__ import annotations

import json
import threading

from runtime import board


def csv(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_better_score_replaces_the_file_and_a_worse_one_does_not(tmp_path):
    ws = tmp_path / "ws"
    assert board.current(ws) is None
    assert board.offer(ws, csv(tmp_path, "a.csv", "id,y\n1,a\n"), score=0.7, source="floor:a",
                       lower_is_better=False, started_at=None)
    assert not board.offer(ws, csv(tmp_path, "b.csv", "id,y\n1,b\n"), score=0.6, source="lane", lower_is_better=False)
    assert (ws / board.SUBMISSION).read_text() == "id,y\n1,a\n"
    assert board.offer(ws, csv(tmp_path, "c.csv", "id,y\n1,c\n"), score=0.8, source="blend", lower_is_better=False)
    record = board.current(ws)
    assert (ws / board.SUBMISSION).read_text() == "id,y\n1,c\n"
    assert record["score"] == 0.8 and record["source"] == "blend"
    assert [h["source"] for h in record["history"]] == ["floor:a", "blend"]


def test_lower_is_better_and_force(tmp_path):
    ws = tmp_path / "ws"
    board.offer(ws, csv(tmp_path, "a.csv", "a"), score=2.0, source="a", lower_is_better=True)
    assert board.offer(ws, csv(tmp_path, "b.csv", "b"), score=1.0, source="b", lower_is_better=True)
    assert not board.offer(ws, csv(tmp_path, "c.csv", "c"), score=3.0, source="c", lower_is_better=True)
    assert board.offer(ws, csv(tmp_path, "d.csv", "d"), score=3.0, source="person", lower_is_better=True, force=True)
    assert (ws / board.SUBMISSION).read_text() == "d"


def test_concurrent_offers_keep_the_best(tmp_path):
    ws = tmp_path / "ws"
    files = [csv(tmp_path, f"{i}.csv", f"file {i}\n" * 1000) for i in range(16)]

    def offer(i):
        board.offer(ws, files[i], score=float(i), source=str(i), lower_is_better=False)

    threads = [threading.Thread(target=offer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (ws / board.SUBMISSION).read_text() == "file 15\n" * 1000
    assert json.loads((ws / board.RECORD).read_text())["score"] == 15.0
