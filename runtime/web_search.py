"""Web search for model approaches: a LangChain search tool, built from a spec, run once per pipeline run.

A spec is 'tavily' (langchain_tavily.TavilySearch, needs TAVILY_API_KEY), 'duckduckgo' (langchain_community's
DuckDuckGoSearchResults) or 'module:attr' naming any LangChain tool (a BaseTool, or a function of no
arguments returning one). The optional packages are imported only when chosen.

Search is an extra, never a requirement: a tool that cannot be built, a network failure, a timeout or an
answer of an unknown shape is logged as a warning and gives no results, and the run goes on with the catalog.
Results are normalised to {title, url, snippet} with capped sizes, whatever shape the tool answered in
(Tavily's {"results": [...]}, a list of dicts, a JSON string, DuckDuckGo's "snippet: ..., title: ...,
link: ..." string, plain text). Successful results are cached in a file of the run's workspace, so a
resumed run re-uses them instead of searching again.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

# Built-in specs: (module, class, pip packages, keyword naming the result count).
BUILT_IN = {
    "tavily": ("langchain_tavily", "TavilySearch", "langchain-tavily", "max_results"),
    "duckduckgo": ("langchain_community.tools", "DuckDuckGoSearchResults", "langchain-community ddgs", "num_results"),
}
TOOL_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
SEARCH_TIMEOUT_S = 60.0
TITLE_CHARS, URL_CHARS, SNIPPET_CHARS = 160, 400, 500
URL = re.compile(r"https?://[^\s,;'\"<>\]]+")
# DuckDuckGoSearchResults' default string output: "snippet: ..., title: ..., link: ...[, date: ...]" per result.
DDG_ENTRY = re.compile(r"snippet: (?P<snippet>.*?), title: (?P<title>.*?), link: (?P<url>[^\s\]]+?)(?=\]?(?:,\s|$))",
                       re.S)
TITLE_KEYS = ("title", "name")
URL_KEYS = ("url", "link", "href", "source")
SNIPPET_KEYS = ("content", "snippet", "body", "text", "description", "page_content")


# --------------------------------------------------------------------------- the spec


def parse_search_spec(spec: str) -> tuple[str, str]:
    """('off', ''), ('tavily', ''), ('duckduckgo', '') or ('tool', 'module:attr'); ValueError naming the fix."""
    spec = spec.strip()
    if not spec:
        return "off", ""
    if spec.lower() in BUILT_IN:
        return spec.lower(), ""
    if TOOL_REF.match(spec):
        return "tool", spec
    raise ValueError(f"unknown web search {spec!r}; use '' (off), 'tavily', 'duckduckgo' or 'module:attr' naming "
                     f"a LangChain tool (e.g. 'mypackage.tools:search')")


def _import(module: str, packages: str, name: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"web search {name!r} needs {packages} ({exc}); install it: pip install {packages} "
                         f"(or pip install 'mlestar-graph[web]')") from None


def _built_in_tool(name: str, max_results: int):
    module_name, class_name, packages, count_keyword = BUILT_IN[name]
    if name == "tavily" and not os.environ.get("TAVILY_API_KEY"):
        raise ValueError("web search 'tavily' needs an API key: set the TAVILY_API_KEY environment variable")
    module = _import(module_name, packages, name)
    kwargs: dict[str, Any] = {count_keyword: max_results}
    if name == "duckduckgo":
        kwargs["output_format"] = "list"
    else:
        kwargs["handle_tool_error"] = False  # a failure raises (and is logged) instead of posing as a result
    try:
        return getattr(module, class_name)(**kwargs)
    except ImportError as exc:  # the tool's own backend package (e.g. ddgs) is missing
        raise ValueError(f"web search {name!r} cannot start: {exc}; install it: pip install {packages}") from None
    except Exception as exc:
        raise ValueError(f"web search {name!r} cannot be built: {exc}") from None


def _referenced_tool(ref: str):
    from langchain_core.tools import BaseTool

    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"web search {ref!r}: cannot import module {module_name!r} ({exc}); check the spelling "
                         f"and that the module is on the Python path") from None
    found = getattr(module, attr, None)
    if found is None:
        raise ValueError(f"web search {ref!r}: module {module_name!r} has no {attr!r}; name a LangChain tool or a "
                         f"function of no arguments returning one")
    if not isinstance(found, BaseTool) and callable(found):
        try:
            found = found()
        except Exception as exc:
            raise ValueError(f"web search {ref!r}: calling {attr}() to build the tool failed: {exc}") from None
    if not isinstance(found, BaseTool):
        raise ValueError(f"web search {ref!r} is a {type(found).__name__}, not a LangChain tool (BaseTool); "
                         f"name a tool, e.g. a function decorated with @tool, or a factory returning one")
    return found


def build_search_tool(spec: str, max_results: int):
    """The LangChain tool a spec names; ValueError naming the problem and the fix."""
    kind, ref = parse_search_spec(spec)
    if kind == "off":
        raise ValueError("web search is off (empty spec): there is no tool to build")
    return _referenced_tool(ref) if kind == "tool" else _built_in_tool(kind, max_results)


def check_search_spec(spec: str) -> None:
    """What building the tool would fail on (package, key, module), checked before a run; no search is made."""
    if parse_search_spec(spec)[0] != "off":
        build_search_tool(spec, 1)


# --------------------------------------------------------------------------- running a query


def _with_timeout(call: Callable[[], Any], timeout_s: float) -> Any:
    """`call()` in a daemon thread: a tool that hangs on the network cannot hold the run."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    worker = threading.Thread(target=target, name="web-search", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def run_query(tool, query: str) -> Any:
    """One call of the tool: with {"query": ...} when it has that argument, else the plain text."""
    args = getattr(tool, "args", None) or {}
    return tool.invoke({"query": query} if "query" in args else query)


def search_web(spec: str, query: str, max_results: int, timeout_s: float = SEARCH_TIMEOUT_S) -> list[dict] | None:
    """Normalised results of one search, or None when the tool could not be built or failed (logged)."""
    try:
        tool = build_search_tool(spec, max_results)
        raw = _with_timeout(lambda: run_query(tool, query), timeout_s)
    except Exception as exc:
        log.warning("web search %r failed, going on with the catalog only: %s: %s", spec, type(exc).__name__, exc)
        return None
    results = normalise_results(raw, max_results)
    if raw and not results:
        log.warning("web search %r answered in a shape with no usable results (%s); going on with the catalog "
                    "only", spec, type(raw).__name__)
    return results


# --------------------------------------------------------------------------- result shapes


def _clip(value: Any, limit: int) -> str:
    text = " ".join(str(value).split()) if value is not None else ""
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _first(item: dict, keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = item.get(key)
        if isinstance(value, (str, int, float)) and str(value).strip():
            return value
    return None


def _web_url(value: Any) -> str:
    text = str(value or "").strip()
    return text[:URL_CHARS] if URL.fullmatch(text) else ""


def _one_result(item: Any) -> dict | None:
    if hasattr(item, "page_content"):  # a LangChain Document
        metadata = getattr(item, "metadata", None) or {}
        item = {**{k: v for k, v in metadata.items() if isinstance(k, str)}, "page_content": item.page_content}
    if isinstance(item, str):
        found = URL.search(item)
        item = {"snippet": item, "url": found.group(0) if found else ""}
    if not isinstance(item, dict):
        return None
    result = {"title": _clip(_first(item, TITLE_KEYS), TITLE_CHARS), "url": _web_url(_first(item, URL_KEYS)),
              "snippet": _clip(_first(item, SNIPPET_KEYS), SNIPPET_CHARS)}
    return result if result["snippet"] or result["title"] else None


def _items(raw: Any, depth: int = 0) -> list:
    """The individual results inside one tool answer."""
    if depth > 3 or raw is None:
        return []
    if hasattr(raw, "content") and not isinstance(raw, (str, dict)):  # a ToolMessage
        return _items(raw.content, depth + 1)
    if isinstance(raw, dict):
        inner = raw.get("results")
        return _items(inner, depth + 1) if isinstance(inner, list) else [raw]
    if isinstance(raw, (list, tuple)):
        return list(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if text[:1] in "[{":
            try:
                return _items(json.loads(text), depth + 1)
            except json.JSONDecodeError:
                pass
        entries = [m.groupdict() for m in DDG_ENTRY.finditer(text)]
        return entries or ([text] if text else [])
    return []


def normalise_results(raw: Any, limit: int) -> list[dict]:
    """At most `limit` results {title, url, snippet} from any common answer shape; duplicates (same URL) dropped."""
    results, seen = [], set()
    for item in _items(raw):
        result = _one_result(item)
        if result is None or (result["url"] and result["url"] in seen):
            continue
        seen.add(result["url"])
        results.append(result)
        if len(results) >= limit:
            break
    return results


# --------------------------------------------------------------------------- the run's cache


def cached_search(cache_path: str | Path, *, run_id: str, spec: str, query: str, max_results: int,
                  timeout_s: float = SEARCH_TIMEOUT_S) -> tuple[list[dict] | None, bool]:
    """(results, reused): the run's earlier results for the same search when cached, else a new search.

    Only an answered search is cached: a failed one (None) is tried again when the node runs again.
    """
    path = Path(cache_path)
    key = {"run_id": run_id, "spec": spec, "query": query, "max_results": max_results}
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(cached, dict) and cached.get("key") == key and isinstance(cached.get("results"), list):
            return cached["results"], True
    except (OSError, ValueError):
        pass
    results = search_web(spec, query, max_results, timeout_s)
    if results is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(path.name + ".tmp")
        staging.write_text(json.dumps({"key": key, "results": results}, indent=1), encoding="utf-8")
        staging.replace(path)
    return results, False
