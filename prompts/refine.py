"""Refine: ablation study, its summary, choosing a code block, rewriting it, planning the next rewrite."""

#: Prompts that show the current solution start with the task header and then the script, in the same words,
#: so that the model server reads that shared prefix once (its prompt cache) across ablation, extract and rewrite.
ABLATION_SCRIPT = """{task_header}

Script:
```python
{code}
```

## Job: ablation study
{previous_ablations}
Write a script that measures how much 2-3 parts of the script above matter (for example: a preprocessing
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

EXTRACT_BLOCK = """{task_header}

Script:
```python
{code}
```

## Job: choose a code block to improve
The script above is the current solution (validation {metric}: {score}, {direction}).
Ablation findings: {summary}
{refined_note}{goals}
Choose ONE contiguous block of lines from the script whose improvement would raise the score most,
and a plan to improve it. Copy the block exactly, character for character. Answer JSON only:
{{"code_block": "<exact lines from the script>", "plan": "<one or two sentences>"}}"""

REFINED_NOTE = """Blocks already improved (choose a different one):
{blocks}
"""

REWRITE_BLOCK = """{task_header}

Script:
```python
{code}
```

## Job: rewrite a code block

Rewrite only this block of the script above:
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
