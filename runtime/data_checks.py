"""Static data-leakage and data-usage checks of a validation script (the paper's two checkers, without a model).

Leakage: the validation score is only honest if nothing was fitted on the validation rows. Two patterns are
flagged, each with the line and a fix the coder can act on:
  * anything fitted (`fit`, `fit_transform`, `fit_resample`, `partial_fit`) on data whose name says it is
    validation or test data (`X_val`, `X_test`, `valid_df`, `pd.concat([X_train, X_val])`, ...);
  * a scaler, imputer, vectoriser, decomposition, feature selector or target encoder fitted, before the
    train/validation split, on the data that is then split (its statistics include the validation rows).
Category vocabularies (LabelEncoder, OneHotEncoder) and pandas statistics such as `fillna(df.mean())` are
not flagged: they leak little and flagging them would cost a model round trip on most scripts.

Usage: every provided data file except the test set and the sample submission should be read; a file whose
name never appears in the script (and no folder listing or glob that could read it) is reported unused.
"""

from __future__ import annotations

import ast
import re
from pathlib import PurePath

FIT_METHODS = {"fit", "fit_transform", "fit_resample", "partial_fit"}
PREPROCESSORS = {
    "StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "QuantileTransformer", "PowerTransformer",
    "Normalizer", "SimpleImputer", "KNNImputer", "IterativeImputer", "PCA", "TruncatedSVD", "KernelPCA",
    "FactorAnalysis", "SelectKBest", "SelectPercentile", "SelectFromModel", "RFE", "VarianceThreshold",
    "TfidfVectorizer", "CountVectorizer", "TfidfTransformer", "TargetEncoder", "KBinsDiscretizer",
}
SPLITTERS = {"train_test_split"}
HELD_OUT_NAME = re.compile(r"(?i)(^|_)(x_?|df_?)?(val|valid|validation|test|holdout|dev)(_|\d|$)")
DATA_SUFFIXES = {".csv", ".tsv", ".parquet", ".feather", ".json", ".jsonl", ".npy", ".npz", ".zip", ".gz"}
LISTING_CALLS = {"listdir", "glob", "iglob", "rglob", "scandir", "walk", "iterdir"}


def _names(node: ast.AST) -> set[str]:
    """Every variable name read inside an expression."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _fitted_data(call: ast.Call) -> ast.AST | None:
    """The data argument of a fit call: the first positional argument, or X=."""
    if call.args:
        return call.args[0]
    return next((k.value for k in call.keywords if k.arg in ("X", "raw_documents")), None)


def _preprocessor_of(receiver: ast.AST, constructed: dict[str, str]) -> str | None:
    """The preprocessor class a fit is called on (`StandardScaler().fit`, or a variable holding one)."""
    if isinstance(receiver, ast.Call) and _callee(receiver) in PREPROCESSORS:
        return _callee(receiver)
    if isinstance(receiver, ast.Name):
        return constructed.get(receiver.id)
    return None


def _ignored_names(tree: ast.Module) -> set[str]:
    """Names that are not data: imported modules and classes, functions, settings (assigned literals only)."""
    names = {a.asname or a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
             for a in n.names}
    names |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    literal: set[str] = set()
    computed: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            kind = literal if _is_literal(node.value) else computed
            kind.update(n for t in node.targets for n in _names(t))
    return names | (literal - computed)


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def _sources(tree: ast.Module, ignored: set[str]) -> dict[str, set[str]]:
    """For each assigned name, the data names its value was computed from (all assignments merged)."""
    sources: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in _names(target):
                    sources.setdefault(name, set()).update(_names(node.value) - ignored - {name})
    return sources


def _ancestors(names: set[str], sources: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(sources.get(name, ()))
    return seen


def _module_level_calls(tree: ast.Module) -> list[ast.Call]:
    """Calls outside function and class bodies, in source order."""
    inside = {id(c) for d in ast.walk(tree) if isinstance(d, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
              for c in ast.walk(d) if isinstance(c, ast.Call)}
    return [c for c in _calls(tree) if id(c) not in inside]


def _calls(tree: ast.AST) -> list[ast.Call]:
    return sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset))


def _splitters(tree: ast.Module) -> set[str]:
    """train_test_split and the script's own functions that call it (e.g. `def split(df): ...`)."""
    wrappers = {d.name for d in ast.walk(tree) if isinstance(d, ast.FunctionDef)
                and any(_callee(c) in SPLITTERS for c in _calls(d))}
    return SPLITTERS | wrappers


def leakage_findings(code: str) -> list[str]:
    """Where the script fits something on validation/test rows; [] when nothing is found (or it does not parse)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    ignored = _ignored_names(tree)
    constructed = {t.id: _callee(n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign)
                   and isinstance(n.value, ast.Call) and _callee(n.value) in PREPROCESSORS
                   for t in n.targets if isinstance(t, ast.Name)}
    top_level = _module_level_calls(tree)
    splitters = _splitters(tree)
    top_ids = {id(c) for c in top_level}
    splits = [c for c in top_level if _callee(c) in splitters]
    first_split = splits[0].lineno if splits else None
    split_inputs = set().union(*(_names(a) for c in splits for a in c.args)) - ignored
    split_data = _ancestors(split_inputs, _sources(tree, ignored))

    findings = []
    for call in _calls(tree):
        if not (isinstance(call.func, ast.Attribute) and call.func.attr in FIT_METHODS):
            continue
        data = _fitted_data(call)
        if data is None:
            continue
        what = f"line {call.lineno}: `{ast.unparse(call)[:90]}`"
        data_names = _names(data) - ignored
        held_out = sorted(n for n in data_names if HELD_OUT_NAME.search(n))
        preprocessor = _preprocessor_of(call.func.value, constructed)
        if held_out:
            findings.append(f"{what} fits on held-out rows ({', '.join(held_out)}). Fit only on the training "
                            f"part and use .transform/.predict on the validation rows.")
        elif (preprocessor and first_split is not None and id(call) in top_ids and call.lineno < first_split
              and data_names & split_data):
            findings.append(f"{what} fits a {preprocessor} on all rows before the train/validation split, so "
                            f"its statistics include the validation rows. Split first, fit the {preprocessor} "
                            f"on the training part only, then transform both parts.")
    return findings


def _string_constants(tree: ast.Module) -> list[str]:
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def unused_files(code: str, data_files: tuple[str, ...] | list[str], exempt: set[str]) -> list[str]:
    """Provided data files (not in `exempt`) that the script never names; [] when it lists the input folder."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    if any(isinstance(n, ast.Call) and _callee(n) in LISTING_CALLS for n in ast.walk(tree)):
        return []  # it reads the folder generically; whatever it reads, it may read every file
    text = "\n".join(_string_constants(tree))
    candidates = [f for f in data_files if f not in exempt and PurePath(f).suffix.lower() in DATA_SUFFIXES]
    return [f for f in candidates if f not in text and PurePath(f).stem not in text]
