"""Refine: ablation study, its summary, choosing a code block, rewriting it, planning the next rewrite."""

ABLATION_SCRIPT = """{task_header}

## Job: ablation study

Current solution:
```python
{code}
```
{previous_ablations}
Write a script that measures how much 2-3 parts of this solution matter (for example: a preprocessing
step, a feature, a model setting). Run the original and each variant with one part removed or changed,
and print one line per variant: `<variant name>: <validation {metric}>`. Keep each run fast.
As the last line print the original's score as: print(f"Final Validation Performance: {{score}}")
Answer with ONE complete Python script in a single ```python code block."""

ABLATION_SUMMARY = """## Job: summarise an ablation study
Metric: {metric} ({direction}).
Ablation script output:
{output}

In 2-4 sentences: which part of the solution matters most, and which change looks most promising?"""

PREVIOUS_ABLATIONS = """Earlier ablation findings (study other parts this time):
{summaries}
"""

EXTRACT_BLOCK = """## Job: choose a code block to improve
Current solution (validation {metric}: {score}, {direction}):
```python
{code}
```
Ablation findings: {summary}
{refined_note}{goals}
Choose ONE contiguous block of lines from the script above whose improvement would raise the score most,
and a plan to improve it. Copy the block exactly, character for character. Answer JSON only:
{{"code_block": "<exact lines from the script>", "plan": "<one or two sentences>"}}"""

REFINED_NOTE = """Blocks already improved (choose a different one):
{blocks}
"""

REWRITE_BLOCK = """{task_header}

## Job: rewrite a code block

Full script, for context:
```python
{code}
```
Rewrite only this block:
```python
{block}
```
Plan: {plan}

Answer with the new version of the block only (same purpose, same variable names used later), in a
single ```python code block."""

PLAN_NEXT = """## Job: plan a new refinement
Metric: {metric} ({direction}). Code block being improved:
```python
{block}
```
Plans tried so far and the validation score each gave (score before any change: {base_score}):
{tried}
{goals}
Propose one new plan for this block that is likely to beat all of them. Answer with the plan only,
in one or two sentences."""

# JSON schema of the extract answer, for providers that constrain decoding to it (structured output).
TARGET_SCHEMA = {"type": "object", "properties": {"code_block": {"type": "string"}, "plan": {"type": "string"}},
                 "required": ["code_block", "plan"]}
