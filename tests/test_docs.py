"""The generated reference docs match the code (regenerate with `python -m graph.docs`)."""

from __future__ import annotations

from dataclasses import fields

import pytest

from graph.context import Context
from graph.docs import DOCS, ROOT, configuration_markdown


@pytest.mark.parametrize("path", sorted(DOCS))
def test_committed_docs_are_what_the_code_generates(path):
    committed = (ROOT / path).read_text()
    assert committed == DOCS[path](), f"{path} is out of date: run `python -m graph.docs` and commit the result"


def test_configuration_lists_every_setting_with_its_bounds():
    text = configuration_markdown()
    for f in fields(Context):
        assert f"| `{f.name}` |" in text
    assert "| `num_lanes` | int | `2` | 1 | 8 |" in text
