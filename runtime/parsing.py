"""Pulling code, JSON and code blocks out of model answers.

Pure functions. Every failure raises ``AnswerError`` whose message says what was wrong in words
the model can act on; callers send it back in a re-ask.

Code extraction rule (``extract_code``):

* Fenced blocks tagged ``python``/``py``/``python3`` or untagged are candidates; blocks tagged as
  another language (``bash``, ``json``, ``text`` ...) are ignored.
* One candidate: it is the answer, as is (a syntax error in it is reported by running it).
* Several candidates: the longest one that parses as Python (a later block wins a tie, since
  models put corrected versions last). If none parses, ``AnswerError``.
* If the last fence is never closed the answer was cut off: the unterminated block is taken only
  if it parses as Python, otherwise ``AnswerError("the code block is truncated ...")``.
* No fence at all: the whole answer, if it parses as Python and contains a real statement.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["AnswerError", "apply_edits", "extract_code", "extract_json", "fix_parser", "locate_block",
           "replace_block"]


class AnswerError(ValueError):
    """A model answer that cannot be used; the message explains why, for a re-ask."""


# --------------------------------------------------------------------------- code

_PYTHON_TAGS = {"", "python", "py", "python3", "py3"}
_OPEN_FENCE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<tag>[^\s`]*)[^`]*$")


@dataclass
class _Fence:
    tag: str
    body: str
    closed: bool


def _fenced_blocks(text: str) -> list[_Fence]:
    """All fenced blocks in order; the last may be unterminated (``closed=False``)."""
    blocks: list[_Fence] = []
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        match = _OPEN_FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, tag = match["fence"], match["tag"].lower().lstrip(".{").rstrip("}")
        body, i, closed = _read_fence_body(lines, i + 1, fence)
        blocks.append(_Fence(tag=tag, body=textwrap.dedent(body), closed=closed))
    return blocks


def _read_fence_body(lines: list[str], i: int, fence: str) -> tuple[str, int, bool]:
    """Lines up to the closing fence (same char, at least as long); also accepts ``code```."""
    body: list[str] = []
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
            return "\n".join(body), i + 1, True
        if stripped.endswith(fence) and not stripped.startswith(fence[0]):
            body.append(lines[i].rstrip()[: -len(fence)])
            return "\n".join(body), i + 1, True
        body.append(lines[i])
        i += 1
    return "\n".join(body), i, False


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def _syntax_error(code: str) -> str:
    try:
        ast.parse(code)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except ValueError as exc:
        return str(exc)
    return ""


def _looks_like_code(code: str) -> bool:
    """Parses, and has a statement other than a bare name/constant (``Done.`` is not code)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return any(
        not (isinstance(node, ast.Expr) and isinstance(node.value, (ast.Constant, ast.Name)))
        for node in tree.body
    )


def extract_code(text: str) -> str:
    """The Python program in a model answer (see the module docstring for the rule)."""
    blocks = [b for b in _fenced_blocks(text) if b.tag in _PYTHON_TAGS]
    if blocks and not blocks[-1].closed:
        tail = blocks[-1].body.strip("\n")
        if tail.strip() and _parses(tail):
            return tail + "\n"
        raise AnswerError(
            "the code block is truncated (the answer ends before the closing ```), so the script is "
            "incomplete. Answer again with the complete script in one ```python block; keep it shorter."
        )
    bodies = [b.body.strip("\n") for b in blocks if b.body.strip()]
    if len(bodies) == 1:
        return bodies[0] + "\n"
    if bodies:
        return _pick_among_blocks(bodies) + "\n"
    stripped = text.strip()
    if stripped and not _fenced_blocks(text) and _looks_like_code(stripped):
        return stripped + "\n"
    raise AnswerError(
        "no code block found in the answer. Answer with the complete Python script inside one "
        "```python ... ``` block."
    )


#: One SEARCH/REPLACE edit of a script (the debugger's answer format): the lines to find, then their replacement.
_EDIT = re.compile(r"^<{5,9} ?SEARCH[ \t]*\n(.*?)^={5,9}[ \t]*\n(.*?)^>{5,9} ?REPLACE[ \t]*$", re.S | re.M)


def apply_edits(code: str, text: str) -> str | None:
    """`code` with the answer's SEARCH/REPLACE edits applied in order; None when the answer holds no edit.
    Each SEARCH text must occur exactly once (compared line by line without trailing spaces)."""
    edits = _EDIT.findall(text)
    if not edits:
        return None
    for number, (search, replacement) in enumerate(edits, 1):
        code = _apply_edit(code, search, replacement, number)
    if not _parses(code):
        raise AnswerError(f"after your edits the script is no longer valid Python ({_syntax_error(code)}). "
                          "Answer again with edits that keep it valid, or with the whole fixed script.")
    return code


_COMMENT = re.compile(r"(^|\s)#.*$")


def _loose(line: str) -> str:
    """A line without its comment, runs of spaces as one: small models retype comments when they copy lines."""
    return " ".join(_COMMENT.sub("", line).split())


def _matches(lines: list[str], wanted: list[str]) -> list[int]:
    return [i for i in range(len(lines) - len(wanted) + 1) if wanted and lines[i:i + len(wanted)] == wanted]


def _apply_edit(code: str, search: str, replacement: str, number: int) -> str:
    lines = [line.rstrip() for line in code.splitlines()]
    wanted = [line.rstrip() for line in search.rstrip("\n").splitlines()]
    starts = _matches(lines, wanted)
    if not starts and any(_loose(w) for w in wanted):  # then the code alone, comments and spacing aside
        starts = _matches([_loose(line) for line in lines], [_loose(w) for w in wanted])
    if len(starts) != 1:
        where = "are not in the script" if not starts else f"occur {len(starts)} times in the script"
        raise AnswerError(f"edit {number}: its SEARCH lines {where}; copy them exactly from the script (enough "
                          "lines to be unique), or answer with the whole fixed script in one ```python block.")
    start = starts[0]
    new = lines[:start] + replacement.rstrip("\n").splitlines() + lines[start + len(wanted):]
    return "\n".join(new) + "\n"


_VARIANT = re.compile(r"^#{2,4}[ \t]*Variant:?[ \t]*(.+?)[ \t]*$", re.M)


def variants_parser(code: str, limit: int = 3) -> Callable[[str], list[tuple[str, str]]]:
    """Parse an ablation answer: `### Variant: <name>` sections, each with SEARCH/REPLACE edits of `code`.

    A small model often writes a variant out as a whole script instead (1,400-2,000 answer tokens in the
    20-minute suite, often starting below the imports): such a section counts too, with the original's
    missing import lines put back. A section that cannot be used is skipped when another one can; variants
    that change nothing are dropped. Returns up to `limit` (name, script) pairs."""
    def parse(text: str) -> list[tuple[str, str]]:
        heads = list(_VARIANT.finditer(text))
        variants, problems = [], []
        for head, after in zip(heads, [*heads[1:], None]):
            section = text[head.end():after.start() if after else len(text)]
            try:
                edited = apply_edits(code, section)
                if edited is None:
                    edited = with_imports_of(code, extract_code(section))
            except AnswerError as exc:
                problems.append(f"variant '{head.group(1)}': {exc}")
                continue
            if edited.strip() != code.strip():
                variants.append((head.group(1)[:80], edited))
        if not variants:
            raise AnswerError(problems[0] if problems else "no variant found: answer with lines `### Variant: "
                              "<short name>`, each followed by SEARCH/REPLACE edits of the script")
        return variants[:limit]
    return parse


def with_imports_of(original: str, script: str) -> str:
    """`script` with the top-level import lines of `original` that it lacks put first (a whole script written
    from the config block on still runs)."""
    present = {line.strip() for line in script.splitlines()}
    missing = [line for line in original.splitlines()
               if line.startswith(("import ", "from ")) and line.strip() not in present]
    return "\n".join(missing) + "\n\n" + script if missing else script


def fix_parser(code: str) -> Callable[[str], str]:
    """Parse a debugger's answer: edits of `code`, or a whole new script."""
    def parse(text: str) -> str:
        edited = apply_edits(code, text)
        return edited if edited is not None else extract_code(text)
    return parse


def _pick_among_blocks(bodies: list[str]) -> str:
    valid = [b for b in bodies if _parses(b)]
    if not valid:
        longest = max(bodies, key=len)
        raise AnswerError(
            f"the answer has {len(bodies)} code blocks and none is valid Python (the longest fails "
            f"at {_syntax_error(longest)}). Answer with the complete script in exactly one ```python block."
        )
    best = valid[0]
    for body in valid[1:]:
        if len(body) >= len(best):
            best = body
    return best


# --------------------------------------------------------------------------- JSON

_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def _balanced_end(text: str, start: int) -> int | None:
    """Index just past the bracket closing ``text[start]``, honouring JSON strings.

    ``len(text) + 1`` means the text ends while the bracket is still open (a truncated answer);
    None means the brackets do not pair up (not JSON).
    """
    closers = {"{": "}", "[": "]"}
    stack: list[str] = []
    in_string = escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in closers:
            stack.append(closers[ch])
        elif ch in "}]":
            if not stack or stack.pop() != ch:
                return None
            if not stack:
                return i + 1
    return len(text) + 1


def _decode(snippet: str) -> Any:
    """JSON, then JSON without trailing commas, then a Python literal (single quotes, True)."""
    for attempt in (snippet, _TRAILING_COMMA.sub(r"\1", snippet)):
        try:
            return json.loads(attempt)
        except ValueError:
            pass
    try:
        value = ast.literal_eval(snippet)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError("not JSON") from None
    json.dumps(value)  # only JSON-representable literals count (raises TypeError otherwise)
    return value


def _scan_json(text: str) -> dict | None:
    """First top-level ``{...}`` in ``text`` that decodes to an object.

    Raises AnswerError for a list of objects (the model answered the wrong shape) and for an
    object that is opened but never closed (a truncated answer: its inner objects must not be
    mistaken for the answer).
    """
    i = 0
    while i < len(text):
        ch = text[i]
        if ch not in "{[":
            i += 1
            continue
        end = _balanced_end(text, i)
        if end == len(text) + 1:
            if ch == "[" and text[i + 1 :].lstrip().startswith("{"):
                raise AnswerError(_LIST_MESSAGE)
            if ch == "{":
                raise AnswerError(_TRUNCATED_MESSAGE)
            i += 1
            continue
        try:
            value = None if end is None else _decode(text[i:end])
        except (ValueError, TypeError):
            value = None
        if isinstance(value, dict):
            return value
        if isinstance(value, list) and any(isinstance(v, dict) for v in value):
            raise AnswerError(_LIST_MESSAGE)
        i = end if end is not None and isinstance(value, list) else i + 1
    return None


_TRUNCATED_MESSAGE = (
    "the JSON object is truncated (it is opened with { but never closed). Answer again with one "
    "complete, shorter JSON object."
)
_LIST_MESSAGE = (
    "expected one JSON object ({...}) but the answer is a JSON list. Answer with a single JSON "
    "object with the requested keys."
)


# Closed fences tagged with a non-JSON language: their braces (f-strings, dict literals) are not
# the answer and must not be mistaken for an unclosed object.
_CODE_FENCE = re.compile(r"^[ \t]*(`{3,})[ \t]*(?!json)[A-Za-z][^\n]*\n.*?^[ \t]*\1[ \t]*$", re.M | re.S)


def _fenced_json(block: _Fence) -> dict | None:
    """A ```json block is scanned (its errors count); an untagged one must be an object itself."""
    if block.tag in {"json", "json5", "jsonc"}:
        return _scan_json(block.body)
    if block.tag == "":
        try:
            value = _decode(block.body.strip())
        except (ValueError, TypeError):
            return None
        if isinstance(value, list) and any(isinstance(v, dict) for v in value):
            raise AnswerError(_LIST_MESSAGE)
        return value if isinstance(value, dict) else None
    return None


def extract_json(text: str) -> dict:
    """The JSON object in a model answer: plain, fenced, or embedded in prose.

    Tolerates trailing commas and Python-style literals (``'key'``, ``True``), which small models
    produce. Lists, scalars, truncated and absent objects raise ``AnswerError``.
    """
    stripped = text.strip()
    try:
        whole = _decode(stripped)
    except (ValueError, TypeError):
        whole = None
    if isinstance(whole, dict):
        return whole
    if isinstance(whole, list):
        raise AnswerError(_LIST_MESSAGE)
    for block in _fenced_blocks(text):
        found = _fenced_json(block)
        if found is not None:
            return found
    found = _scan_json(_CODE_FENCE.sub("", text))
    if found is not None:
        return found
    raise AnswerError(
        "no JSON object found in the answer. Answer with a single JSON object ({...}) and nothing else."
    )


# --------------------------------------------------------------------------- blocks of a script

_NOT_FOUND = (
    "the block is not an exact substring of the current script. Copy the lines to change verbatim "
    "from the script (same indentation, no '...' elisions), or choose another block."
)


@dataclass
class _Match:
    start: int
    end: int
    fitters: list[Callable[[str], str]]  # ways to fit a replacement into the context, best first


def _lines_with_offsets(code: str) -> list[tuple[int, int, str]]:
    """(start, end-without-terminator, text) for every line of ``code``."""
    out, pos = [], 0
    for raw in code.splitlines(keepends=True):
        content = raw.rstrip("\r\n")
        out.append((pos, pos + len(content), content))
        pos += len(raw)
    return out


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _common_indent(lines: list[str]) -> str:
    indents = [_indent_of(line) for line in lines if line.strip()]
    if not indents:
        return ""
    common = indents[0]
    for ind in indents[1:]:
        while not ind.startswith(common):
            common = common[:-1]
    return common


def _norm_relative(lines: list[str]) -> list[str]:
    """Trailing whitespace dropped and the common indentation removed."""
    lines = [line.rstrip() for line in lines]
    indent = _common_indent(lines)
    return [line[len(indent):] if line else "" for line in lines]


def _norm_first_unindented(lines: list[str]) -> list[str]:
    """Like a block copied from the middle of its first line: first line stripped, rest absolute."""
    lines = [line.rstrip() for line in lines]
    return [lines[0].lstrip()] + lines[1:]


def _block_lines(block: str) -> list[str]:
    lines = block.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _reindent(new: str, indent: str) -> str:
    """``new`` with its common indentation replaced by ``indent``."""
    lines = new.split("\n")
    common = _common_indent(lines)
    return "\n".join(indent + line[len(common):] if line.strip() else "" for line in lines)


def _first_line_indented(new: str, indent: str) -> str:
    return indent + new.lstrip(" \t") if new.strip() else new


def _continuation_indented(new: str, indent: str) -> str:
    """Indent lines 2.. of ``new``: an exact match that starts after the line's indentation."""
    lines = new.split("\n")
    return "\n".join([lines[0]] + [indent + line if line.strip() else line for line in lines[1:]])


def _exact_match(code: str, block: str) -> _Match | None:
    count = code.count(block)
    if count == 0:
        return None
    if count > 1:
        raise AnswerError(
            f"the block occurs {count} times in the script, so the edit is ambiguous. Include more "
            f"surrounding lines so that it matches exactly one place."
        )
    start = code.index(block)
    line_prefix = code[code.rfind("\n", 0, start) + 1 : start]
    fitters: list[Callable[[str], str]] = [lambda new: new]
    if not line_prefix:  # whole lines: keep the replaced lines' indentation (answers often lose it)
        indent = _common_indent(block.splitlines())
        fitters.insert(0, lambda new: _reindent(new, indent))
    elif not line_prefix.strip():
        fitters.append(lambda new: _continuation_indented(new, line_prefix))
    return _Match(start, start + len(block), fitters)


def _tolerant_match(code: str, block: str) -> _Match | None:
    """Line-wise match ignoring trailing whitespace, CRLF, and a shifted indentation."""
    wanted = _block_lines(block)
    if not wanted:
        return None
    lines = _lines_with_offsets(code)
    n = len(wanted)
    for normalise in (_norm_relative, _norm_first_unindented):
        target = normalise(wanted)
        hits = [i for i in range(len(lines) - n + 1) if normalise([line[2] for line in lines[i : i + n]]) == target]
        if len(hits) > 1:
            raise AnswerError(
                f"the block matches {len(hits)} places in the script, so the edit is ambiguous. "
                f"Include more surrounding lines so that it matches exactly one place."
            )
        if hits:
            first = hits[0]
            region = [line[2] for line in lines[first : first + n]]
            return _Match(lines[first][0], lines[first + n - 1][1], _fitters_for(normalise, region))
    return None


def _fitters_for(normalise: Callable, region: list[str]) -> list[Callable[[str], str]]:
    if normalise is _norm_relative:
        indent = _common_indent(region)
        return [lambda new: _reindent(new, indent), lambda new: new]
    first_indent = _indent_of(region[0])
    return [lambda new: _first_line_indented(new, first_indent), lambda new: _reindent(new, _common_indent(region))]


def _locate(code: str, block: str) -> _Match:
    if not block.strip():
        raise AnswerError("the block to replace is empty. Copy the exact lines to change from the script.")
    match = _exact_match(code, block) or _tolerant_match(code, block)
    if match is None:
        raise AnswerError(_NOT_FOUND)
    return match


def locate_block(code: str, block: str) -> str:
    """The exact substring of ``code`` that ``block`` refers to.

    ``block`` itself when it is an exact substring; otherwise the lines of ``code`` that equal it
    up to trailing whitespace, CRLF line endings and a uniformly shifted indentation.
    """
    match = _locate(code, block)
    return code[match.start : match.end]


def replace_block(code: str, old_block: str, new_block: str) -> str:
    """``code`` with the one place ``old_block`` refers to replaced by ``new_block``.

    The replacement is fitted to the context: its indentation follows the replaced lines (when
    the model dropped or shifted it) and its trailing newline follows ``old_block``. Where two
    fittings are plausible, the one that keeps the script valid Python wins. An empty
    ``new_block`` deletes the lines.
    """
    match = _locate(code, old_block)
    exact = code[match.start : match.end] == old_block
    new = new_block.replace("\r\n", "\n")
    new = _match_trailing_newline(new, old_block if exact else "")
    if not exact:
        new = "\n".join(_block_lines(new))
    if not new.strip():
        return _delete_lines(code, match.start, match.end)
    newline = "\r\n" if "\r\n" in code else "\n"
    candidates = [
        code[: match.start] + fit(new).replace("\n", newline) + code[match.end :] for fit in match.fitters
    ]
    if not _parses(code):
        return candidates[0]
    return next((c for c in candidates if _parses(c)), candidates[0])


def _match_trailing_newline(new: str, old: str) -> str:
    if old.endswith("\n"):
        return new if new.endswith("\n") or not new.strip() else new + "\n"
    return new.rstrip("\n")


def _delete_lines(code: str, start: int, end: int) -> str:
    """Remove ``code[start:end]``, and its whole line(s) when nothing else is on them."""
    line_start = code.rfind("\n", 0, start) + 1
    line_end = code.find("\n", end)
    line_end = len(code) if line_end == -1 else line_end + 1
    if not code[line_start:start].strip() and not code[end:line_end].strip():
        return code[:line_start] + code[line_end:]
    return code[:start] + code[end:]
