"""Fake LangChain search tools for offline tests of web search (``web_search="tests.fake_search_tool:NAME"``).

`CALLS` records every query a tool received (tests reset it with monkeypatch), so a test can tell whether
a search really happened. The canned results have Tavily's shape: {"query", "results": [{title, url, content}]}.
"""

from __future__ import annotations

from langchain_core.tools import BaseTool, tool

CALLS: list[str] = []

RESULTS = [
    {"title": "Extremely randomized trees for small tabular data", "url": "https://example.org/extra-trees",
     "content": "ExtraTreesClassifier with 500 trees and min_samples_leaf=2 beat random forests on small data."},
    {"title": "Gradient boosting tips", "url": "https://example.org/boosting",
     "content": "Lower the learning rate and use early stopping on a validation split."},
    {"title": "Feature engineering for passenger data", "url": "https://example.org/features",
     "content": "Family size and title extracted from the name help tree models."},
    {"title": "Duplicate of the first", "url": "https://example.org/extra-trees", "content": "same page again"},
    {"title": "Logistic regression baseline", "url": "https://example.org/logistic",
     "content": "A scaled logistic regression is a strong, fast baseline."},
    {"title": "Stacking", "url": "https://example.org/stacking", "content": "Stack trees and linear models."},
    {"title": "k-nearest neighbours", "url": "https://example.org/knn", "content": "Scale features for kNN."},
]


@tool
def kaggle_search(query: str) -> dict:
    """Search the web (canned results)."""
    CALLS.append(query)
    return {"query": query, "results": RESULTS}


@tool
def offline_search(query: str) -> dict:
    """A search that has no network."""
    CALLS.append(query)
    raise ConnectionError("network is unreachable")


def make_tool() -> BaseTool:
    """A factory of no arguments, the other form a 'module:attr' spec may name."""
    return kaggle_search


NOT_A_TOOL = 42
