"""Checks: a reviewer model looks for data leakage and for provided data the script ignores."""

LEAKAGE_REVIEW = """{task_header}

## Job: check a validation script for data leakage

This script trains a model and prints its validation score:
```python
{code}
```
Leakage means the validation rows influenced training: a scaler, imputer, encoder, feature selector or
model fitted on rows that include the validation rows, target statistics computed over all rows, or
validation rows reused for training. Early stopping on the validation rows is allowed.

Answer JSON only: {{"leakage": true or false, "explanation": "<where and how to fix it, one or two sentences>"}}"""

USAGE_REVIEW = """{task_header}

## Job: check that a script uses the provided data

This script trains a model:
```python
{code}
```
Does it ignore a provided data file, or columns that clearly carry information about the target? Ignoring
the id column, the test file and the sample submission is correct.

Answer JSON only: {{"ignores_data": true or false, "explanation": "<what is ignored and how to use it>"}}"""

LEAKAGE_PROBLEM = ("The script ran, but its validation score is not trustworthy: it leaks validation data into "
                   "training. Fix the leakage and keep everything else unchanged:\n{findings}")

USAGE_PROBLEM = ("The script ran, but it ignores provided data. Use it as well (keep the rest unchanged):\n"
                 "{findings}")

UNUSED_FILE = "./input/{name} is provided but never read; read it and use what it contains."

# JSON schemas of the two verdicts, for providers that constrain decoding to them (structured output).
LEAKAGE_SCHEMA = {"type": "object", "properties": {"leakage": {"type": "boolean"}, "explanation": {"type": "string"}},
                  "required": ["leakage", "explanation"]}
USAGE_SCHEMA = {"type": "object", "properties": {"ignores_data": {"type": "boolean"}, "explanation": {"type": "string"}},
                "required": ["ignores_data", "explanation"]}
