"""Refine: ablation study, choosing a code block, rewriting it, planning the next rewrite."""

from prompts.common import EDIT_BLOCK

#: Prompts that show the current solution start with the task header and then the script, in the same words,
#: so that the model server reads that shared prefix once (its prompt cache) across ablation, extract and rewrite.
ABLATION_VARIANTS = """{task_header}

Script:
```python
{code}
```

## Job: ablation study
{previous_ablations}
Find out which parts of the script above matter: propose 2-3 variants of it, each removing or changing ONE
part (for example a preprocessing step, a feature, a model setting). We run each variant and compare its
validation {metric} with the script's. Answer with each variant as a line `### Variant: <short name>`
followed by its edits of the script, each edit in this form (copy the SEARCH lines exactly from the script):
""" + EDIT_BLOCK

#: The findings of an ablation study, written by the agent from the scores it measured (no model call).
ABLATION_FINDINGS = "Validation {metric} of the script as it is: {original}. {variants}{verdict}"
ABLATION_VARIANT = "With '{name}': {result}. "
MOST_IMPORTANT = "The part that matters most is the one changed in '{name}' (its change hurt most). "
PROMISING = "'{name}' improved the score: a promising change. "
NO_FINDINGS = "No variant ran, so there are no findings; judge from the code."

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
