"""Parsing of model answers: code, JSON, and blocks of a script."""

from __future__ import annotations

import pytest

from runtime.parsing import AnswerError, extract_code, extract_json, locate_block, replace_block

FENCE = "```"


def fenced(body: str, tag: str = "python") -> str:
    return f"{FENCE}{tag}\n{body}\n{FENCE}"


# --------------------------------------------------------------------------- extract_code


class TestExtractCode:
    def test_single_python_block_with_prose(self):
        text = "Here is the solution:\n" + fenced("import os\nprint(os.getcwd())") + "\nHope it helps."
        assert extract_code(text) == "import os\nprint(os.getcwd())\n"

    @pytest.mark.parametrize("tag", ["python", "py", "Python", "python3", ""])
    def test_accepted_tags(self, tag):
        assert extract_code(fenced("x = 1", tag)) == "x = 1\n"

    def test_single_block_returned_even_with_syntax_error(self):
        # running it reports the SyntaxError with a traceback, which is better feedback
        assert extract_code(fenced("def f(:\n    pass")) == "def f(:\n    pass\n"

    def test_other_language_blocks_are_ignored(self):
        text = fenced("pip install lightgbm", "bash") + "\nthen\n" + fenced("import lightgbm")
        assert extract_code(text) == "import lightgbm\n"

    def test_only_other_language_block_is_no_code(self):
        with pytest.raises(AnswerError, match="no code block"):
            extract_code(fenced("pip install lightgbm", "bash"))

    def test_two_blocks_takes_longest_valid(self):
        snippet = fenced("model.fit(X)")
        full = fenced("import numpy as np\nX = np.zeros((3, 2))\nprint(X.sum())")
        assert extract_code(f"Use\n{snippet}\nlike this:\n{full}") == "import numpy as np\nX = np.zeros((3, 2))\nprint(X.sum())\n"

    def test_two_blocks_longest_invalid_is_skipped(self):
        broken = fenced("def main(:\n    a_long_but_broken_line_of_code = 1\n    more = 2")
        good = fenced("print('ok')")
        assert extract_code(broken + "\n" + good) == "print('ok')\n"

    def test_two_blocks_same_length_later_wins(self):
        assert extract_code(fenced("x = 1") + "\nCorrected:\n" + fenced("x = 2")) == "x = 2\n"

    def test_two_blocks_none_valid(self):
        with pytest.raises(AnswerError, match="2 code blocks and none is valid"):
            extract_code(fenced("def f(:") + "\n" + fenced("for x in:"))

    def test_no_block_but_plain_code(self):
        assert extract_code("import pandas as pd\ndf = pd.DataFrame()\n") == "import pandas as pd\ndf = pd.DataFrame()\n"

    @pytest.mark.parametrize("text", ["", "   ", "I cannot help with that.", "Done", "Sure thing! Let me think."])
    def test_no_code(self, text):
        with pytest.raises(AnswerError, match="no code block"):
            extract_code(text)

    def test_truncated_block_that_parses_is_taken(self):
        assert extract_code("Script:\n```python\nimport os\nprint(1)\n") == "import os\nprint(1)\n"

    def test_truncated_block_cut_mid_statement(self):
        with pytest.raises(AnswerError, match="truncated"):
            extract_code("```python\nimport os\nfor i in range(3):\n    print(i, os.sep,")

    def test_truncated_last_block_wins_over_earlier_complete_one(self):
        text = fenced("x = 1") + "\nFull script:\n```python\ndef main():\n    return (1,"
        with pytest.raises(AnswerError, match="truncated"):
            extract_code(text)

    def test_closing_fence_on_last_code_line(self):
        assert extract_code("```python\nx = 1\nprint(x)```") == "x = 1\nprint(x)\n"

    def test_indented_fence_is_dedented(self):
        text = "1. Do this:\n   ```python\n   x = 1\n   if x:\n       print(x)\n   ```"
        assert extract_code(text) == "x = 1\nif x:\n    print(x)\n"

    def test_crlf_answer(self):
        assert extract_code("```python\r\nx = 1\r\n```\r\n") == "x = 1\n"

    def test_four_backtick_fence_containing_triple_backticks(self):
        body = 'DOC = """\n```\nnot a fence\n```\n"""\nprint(DOC)'
        assert extract_code(f"````python\n{body}\n````") == body + "\n"

    def test_empty_block_is_no_code(self):
        with pytest.raises(AnswerError, match="no code block"):
            extract_code("```python\n\n```")


# --------------------------------------------------------------------------- extract_json


class TestExtractJson:
    def test_plain(self):
        assert extract_json('{"a": 1, "b": [true, null]}') == {"a": 1, "b": [True, None]}

    def test_fenced(self):
        assert extract_json('Result:\n```json\n{"plan": "x"}\n```') == {"plan": "x"}

    def test_untagged_fence(self):
        assert extract_json('```\n{"plan": "x"}\n```') == {"plan": "x"}

    def test_embedded_in_prose(self):
        text = 'Sure. Here is my answer: {"model": "lgbm", "params": {"n": 3}} Let me know!'
        assert extract_json(text) == {"model": "lgbm", "params": {"n": 3}}

    def test_braces_inside_strings(self):
        assert extract_json('note {"code": "d = {\\"k\\": 1}}"} end') == {"code": 'd = {"k": 1}}'}

    def test_prose_braces_before_json_are_skipped(self):
        assert extract_json('Use {placeholder} syntax. {"a": 1}') == {"a": 1}

    def test_trailing_commas(self):
        assert extract_json('{"a": [1, 2,], "b": 3,}') == {"a": [1, 2], "b": 3}

    def test_python_literal(self):
        assert extract_json("{'a': True, 'b': None}") == {"a": True, "b": None}

    def test_first_object_wins(self):
        assert extract_json('{"a": 1}\nand also {"b": 2}') == {"a": 1}

    def test_truncated(self):
        with pytest.raises(AnswerError, match="truncated"):
            extract_json('{"plan": "use lightgbm", "steps": ["load", "tr')

    def test_truncated_object_does_not_yield_inner_object(self):
        with pytest.raises(AnswerError, match="truncated"):
            extract_json('{"outer": {"inner": 1}, "next": ')

    def test_truncated_in_fence(self):
        with pytest.raises(AnswerError, match="truncated"):
            extract_json('```json\n{"a": 1, "b": \n')

    @pytest.mark.parametrize(
        "text",
        ['[{"a": 1}, {"b": 2}]', 'Answer: [{"a": 1}]', '```json\n[{"a": 1}]\n```', '[{"a": 1}, {"b":'],
    )
    def test_list_instead_of_dict(self, text):
        with pytest.raises(AnswerError, match="JSON list"):
            extract_json(text)

    def test_list_of_scalars_before_object_is_skipped(self):
        assert extract_json('See [1] and [2]. {"a": 1}') == {"a": 1}

    @pytest.mark.parametrize("text", ["", "no json here", "42", '"just a string"', "{not json}"])
    def test_no_object(self, text):
        with pytest.raises(AnswerError, match="no JSON object"):
            extract_json(text)

    def test_code_block_before_json_is_not_mistaken(self):
        text = fenced("d = {'x': f'{y'}") + '\n{"a": 1}'
        assert extract_json(text) == {"a": 1}

    def test_error_is_value_error(self):
        assert issubclass(AnswerError, ValueError)


# --------------------------------------------------------------------------- locate_block / replace_block

SCRIPT = """import numpy as np


def train(X, y):
    model = make_model()
    model.fit(X, y)
    return model


def main():
    X = np.zeros((4, 2))
    model = train(X, X[:, 0])
    print("Final Validation Performance:", 0.5)


main()
"""


class TestLocateBlock:
    def test_exact(self):
        block = "    model = make_model()\n    model.fit(X, y)"
        assert locate_block(SCRIPT, block) == block

    def test_trailing_whitespace_differs(self):
        block = "    model = make_model()   \n    model.fit(X, y)  "
        assert locate_block(SCRIPT, block) == "    model = make_model()\n    model.fit(X, y)"

    def test_indentation_dropped(self):
        assert locate_block(SCRIPT, "model = make_model()\nmodel.fit(X, y)\n") == (
            "    model = make_model()\n    model.fit(X, y)"
        )

    def test_indentation_shifted(self):
        block = "        X = np.zeros((4, 2))\n        model = train(X, X[:, 0])"
        assert locate_block(SCRIPT, block) == "    X = np.zeros((4, 2))\n    model = train(X, X[:, 0])"

    def test_crlf_block(self):
        assert locate_block(SCRIPT, "def main():\r\n    X = np.zeros((4, 2))\r\n") == "def main():\n    X = np.zeros((4, 2))"

    def test_crlf_code(self):
        code = SCRIPT.replace("\n", "\r\n")
        assert locate_block(code, "def main():\n    X = np.zeros((4, 2))") == "def main():\r\n    X = np.zeros((4, 2))"

    def test_first_line_copied_mid_line(self):
        block = "model = make_model()  \n    model.fit(X, y)"
        assert locate_block(SCRIPT, block) == "    model = make_model()\n    model.fit(X, y)"

    def test_surrounding_blank_lines_ignored(self):
        assert locate_block(SCRIPT, "\n\nmain()\n\n") == "main()"

    def test_not_present(self):
        with pytest.raises(AnswerError, match="not an exact substring"):
            locate_block(SCRIPT, "model = RandomForest()\nmodel.fit(X, y)")

    def test_elided_block_not_present(self):
        with pytest.raises(AnswerError, match="not an exact substring"):
            locate_block(SCRIPT, "def train(X, y):\n    ...\n    return model")

    def test_empty_block(self):
        with pytest.raises(AnswerError, match="empty"):
            locate_block(SCRIPT, "  \n")

    def test_ambiguous_exact(self):
        with pytest.raises(AnswerError, match="occurs 2 times"):
            locate_block("x = 1\ny = 2\nx = 1\n", "x = 1")

    def test_ambiguous_tolerant(self):
        code = "def a():\n    x = 1\n\ndef b():\n        x = 1\n"
        with pytest.raises(AnswerError, match="matches 2 places"):
            locate_block(code, "x = 1 ")


class TestReplaceBlock:
    def test_exact_whole_lines(self):
        out = replace_block(SCRIPT, "    model = make_model()\n", "    model = make_model(seed=0)\n")
        assert "    model = make_model(seed=0)\n    model.fit(X, y)" in out
        assert out.count("make_model") == 1

    def test_only_one_place_changes(self):
        out = replace_block(SCRIPT, "main()\n", "run()\n")  # 'main()' alone also occurs in 'def main():'
        assert out.endswith("\n\nrun()\n") and "def main():" in out

    def test_dedented_block_is_reindented(self):
        out = replace_block(SCRIPT, "model = make_model()\nmodel.fit(X, y)", "model = make_model()\nmodel.fit(X, y, verbose=0)\nmodel.tune()")
        assert "    model = make_model()\n    model.fit(X, y, verbose=0)\n    model.tune()\n    return model" in out

    def test_relative_indentation_of_new_block_is_kept(self):
        out = replace_block(SCRIPT, "model.fit(X, y)", "for _ in range(2):\n    model.fit(X, y)")
        assert "    for _ in range(2):\n        model.fit(X, y)\n    return model" in out
        compile(out, "<script>", "exec")

    def test_exact_single_line_mid_line_with_multiline_new(self):
        out = replace_block(SCRIPT, "model.fit(X, y)", "model.fit(X, y)\nmodel.save()")
        assert "    model.fit(X, y)\n    model.save()\n" in out
        compile(out, "<script>", "exec")

    def test_new_block_already_absolute(self):
        out = replace_block(SCRIPT, "model.fit(X, y)", "model.fit(X, y)\n    model.save()")
        assert "    model.fit(X, y)\n    model.save()\n" in out

    def test_trailing_newline_follows_old_block(self):
        out = replace_block(SCRIPT, "    model.fit(X, y)", "    model.fit(X, y, w)\n\n")
        assert "    model.fit(X, y, w)\n    return model" in out

    def test_trailing_whitespace_block(self):
        out = replace_block(SCRIPT, "    model = make_model()   ", "    model = other()")
        assert "    model = other()\n    model.fit(X, y)" in out

    def test_empty_new_block_deletes_lines(self):
        out = replace_block(SCRIPT, "    model.fit(X, y)\n", "")
        assert "    model = make_model()\n    return model" in out
        out = replace_block(SCRIPT, "model.fit(X, y)", "")
        assert "    model = make_model()\n    return model" in out

    def test_crlf_code_keeps_crlf(self):
        code = SCRIPT.replace("\n", "\r\n")
        out = replace_block(code, "model.fit(X, y)\n", "model.fit(X, y)\nmodel.save()\n")
        assert "\r\n    model.fit(X, y)\r\n    model.save()\r\n    return model" in out
        assert "\n" not in out.replace("\r\n", "")

    def test_not_present(self):
        with pytest.raises(AnswerError, match="not an exact substring"):
            replace_block(SCRIPT, "print('nope')", "print('x')")

    def test_ambiguous(self):
        with pytest.raises(AnswerError, match="occurs 2 times"):
            replace_block("x = 1\nx = 1\n", "x = 1", "x = 2")


def test_replace_block_restores_indentation_an_answer_lost():
    code = "def f():\n    params = dict(a=300)\n    return params\n"
    fixed = replace_block(code, "    params = dict(a=300)\n", "params = dict(a=451)\n")
    assert fixed == "def f():\n    params = dict(a=451)\n    return params\n"


# --- the debugger's fix as edits of the failing script ---

FAILING = "import pandas as pd\nimport numpy as np\n\ndf = pd.read_csv('input/train.csv')\nprint(df.colum)\n"


def edit(search: str, replace: str) -> str:
    return f"```\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n```\n"


def test_a_fix_as_an_edit_replaces_only_the_failing_lines():
    from runtime.parsing import fix_parser

    fixed = fix_parser(FAILING)("The attribute is misspelt.\n" + edit("print(df.colum)  ", "print(df.columns)"))
    assert fixed == FAILING.replace("df.colum)", "df.columns)")


def test_several_edits_apply_in_order_and_a_whole_script_is_still_accepted():
    from runtime.parsing import fix_parser

    answer = edit("import numpy as np", "import numpy as np\nimport math") + edit("print(df.colum)", "print(df.shape)")
    fixed = fix_parser(FAILING)(answer)
    assert "import math" in fixed and fixed.endswith("print(df.shape)\n")
    whole = "```python\nprint('rewritten')\n```"
    assert fix_parser(FAILING)(whole) == "print('rewritten')\n"


@pytest.mark.parametrize("search, replace, complaint", [
    ("print(df.columnz)", "print(1)", "are not in the script"),
    ("import", "import os", "are not in the script"),  # a partial line matches nothing
    ("print(df.colum)", "print(df.colum", "no longer valid Python"),
])
def test_an_edit_that_cannot_apply_is_re_asked_with_the_reason(search, replace, complaint):
    from runtime.parsing import fix_parser

    with pytest.raises(AnswerError, match=complaint):
        fix_parser(FAILING)(edit(search, replace))


def test_an_edit_whose_lines_differ_only_in_comments_and_spacing_still_applies():
    """The 1.5B model retypes comments when it copies SEARCH lines (seen in the 20-minute suite)."""
    from runtime.parsing import fix_parser

    code = "import numpy as np\ndef learned(y):  # log1p for rmsle\n    return np.log1p(y)\nprint(learned(1))\n"
    answer = edit("def learned(y):   # what the model fits, log1p\n    return  np.log1p(y)", "def learned(y):\n    return y")
    assert fix_parser(code)(answer) == code.replace("  # log1p for rmsle", "").replace("np.log1p(y)\n", "y\n", 1)
    with pytest.raises(AnswerError, match="occur 2 times"):  # still unique or refused
        fix_parser("x = 1  # a\nx = 1  # b\n")(edit("x = 1  # c", "x = 2"))
    with pytest.raises(AnswerError, match="are not in the script"):  # comments alone match nothing
        fix_parser(code)(edit("# log1p for rmsle", "# no"))


def test_an_edit_whose_search_lines_repeat_is_refused():
    from runtime.parsing import fix_parser

    with pytest.raises(AnswerError, match="occur 2 times"):
        fix_parser("x = 1\nx = 1\n")(edit("x = 1", "x = 2"))
