"""Make a task folder from an MLE-bench prepared competition or a Kaggle competition.

    mlestar import mlebench:~/.cache/mle-bench/data/spaceship-titanic tasks/spaceship
    mlestar import kaggle:playground-series-s4e1 tasks/bank-churn --metric auc

``mlebench:PATH`` takes a competition folder after ``mlebench prepare -c ID`` (``PATH/prepared/public`` and
``PATH/prepared/private``); the grader's metric comes from ``PATH/config.yaml`` (or ``--config``, e.g. the
mle-bench repository's ``mlebench/competitions/ID/config.yaml``). The hidden answers become
``private/answers.csv``, so ``mlestar grade`` and ``mlestar bench`` can score the result.
``kaggle:COMPETITION`` downloads the data with the official client (``pip install kaggle``; credentials in
``~/.kaggle/kaggle.json`` or ``KAGGLE_USERNAME``/``KAGGLE_KEY``; accept the competition's rules on its web page
first). Kaggle keeps the test labels, so that folder is runnable but not gradable locally, and its description is
only the API's summary: paste the competition's overview into ``public/description.md`` for better results.
When a metric has no equivalent here (see runtime/metrics.py), pass ``--metric`` with one that scores the same way.

Both importers build the folder beside DEST and rename it into place only once ``load_task`` accepts it, so a
failure leaves nothing behind; an existing non-empty DEST is never touched.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from runtime import metrics
from runtime.task import METADATA_FILE, TaskError, grade_submission, load_task, read_csv

#: ``download(competition, folder)`` puts the competition's files (zips or plain files) into ``folder`` and
#: returns what it knows about the competition: "title", "description", "evaluation_metric" (all optional).
Downloader = Callable[[str, Path], Mapping[str, Any] | None]

#: Metric names used by MLE-bench graders and Kaggle pages that the alias table of runtime/metrics.py does
#: not read as written (keys are lower case, with '-' and '_' turned into spaces).
METRIC_NAMES = {
    "multi class log loss": "logloss",
    "multi class logloss": "logloss",
    "binary log loss": "logloss",
    "categorization accuracy": "accuracy",
    "accuracy score": "accuracy",
    "r2 score": "r2",
}
#: Averages over several target columns score differently from our single-target metrics: never mapped.
_PER_COLUMN = re.compile(r"column ?wise|per column|mean columnwise", re.IGNORECASE)
_COMPETITION = re.compile(r"[a-z0-9][a-z0-9-]*")
KAGGLE_CREDENTIALS_HELP = (
    "create an API token on https://www.kaggle.com/settings (API, Create New Token) and save the downloaded "
    "kaggle.json as ~/.kaggle/kaggle.json (chmod 600), or export KAGGLE_USERNAME and KAGGLE_KEY"
)
DESCRIPTION_STUB = """# {title}

{summary}

This task was imported from the Kaggle competition `{competition}`
(https://www.kaggle.com/competitions/{competition}). Its overview and data description are on that page:
paste them here, in place of this paragraph, so that the agent knows what the data means.

## Evaluation

{metric_line}

## Files

- `train.csv`: the training data, with the target.
- `test.csv`: the rows to predict.
- `sample_submission.csv`: a submission in the required format.
"""


class TaskImportError(TaskError):
    """A source cannot be turned into a task folder; the message says why and what to do."""


# ---------------------------------------------------------------------------------------------
# entry points


def import_source(source: str, dest: str | os.PathLike, *, metric: str | None = None,
                  config: str | os.PathLike | None = None, download: Downloader | None = None) -> Path:
    """Dispatch ``mlebench:PATH`` or ``kaggle:COMPETITION`` (the CLI's SOURCE argument)."""
    kind, _, rest = str(source).partition(":")
    if kind == "mlebench" and rest:
        return import_mlebench(rest, dest, metric=metric, config=config)
    if kind == "kaggle" and rest:
        if config is not None:
            raise TaskImportError("--config is for mlebench: sources (an MLE-bench config.yaml); drop it for kaggle:")
        return import_kaggle(rest, dest, metric=metric, download=download)
    raise TaskImportError(
        f"Unknown source {source!r}: write mlebench:PATH (a prepared MLE-bench competition folder) or "
        "kaggle:COMPETITION (the name in the competition's URL, e.g. kaggle:titanic)"
    )


def import_mlebench(src: str | os.PathLike, dest: str | os.PathLike, *, metric: str | None = None,
                    config: str | os.PathLike | None = None) -> Path:
    """Turn an MLE-bench prepared competition into a gradable task folder at ``dest``; returns ``dest``."""
    dest = _check_dest(dest)
    _check_metric_option(metric)
    prepared = _prepared_dir(Path(src).expanduser().resolve())
    conf = _read_config(_config_path(prepared, config))
    competition = str(conf.get("id") or prepared.parent.name)
    description = _mlebench_description(prepared)
    chosen = _choose_metric(metric, _grader_name(conf), f"MLE-bench grader of {competition}", description)
    answers_source = _answers_file(prepared, conf)

    def build(staging: Path) -> None:
        shutil.copytree(prepared / "public", staging / "public", symlinks=False)
        note = f"\n\nNote: this task is scored with {chosen['metric']} (chosen on import)." if metric else ""
        (staging / "public" / "description.md").write_text(description + note + "\n", encoding="utf-8")
        meta = {"name": dest.name, "title": conf.get("name") or competition, "source": f"mlebench:{competition}",
                **chosen}
        _write_json(staging / METADATA_FILE, meta)
        task = _load(staging, dest)
        answers = _answers_table(read_csv(str(answers_source)), task, answers_source)
        (staging / "private").mkdir()
        answers.to_csv(staging / "private" / "answers.csv", index=False)
        _check_gradable(staging, dest)

    return _build_atomically(dest, build)


def import_kaggle(competition: str, dest: str | os.PathLike, *, metric: str | None = None,
                  download: Downloader | None = None) -> Path:
    """Download a Kaggle competition into a runnable (not gradable: no answers) task folder; returns ``dest``."""
    dest = _check_dest(dest)
    _check_metric_option(metric)
    competition = _competition_slug(competition)
    download = download or kaggle_download

    def build(staging: Path) -> None:
        raw = staging / "download"
        raw.mkdir()
        info = dict(download(competition, raw) or {})
        _unpack_zips(raw)
        public = _gather_public(raw, staging / "public")
        title = str(info.get("title") or competition)
        summary = str(info.get("description") or "").strip()
        chosen = _choose_metric(metric, info.get("evaluation_metric"), f"Kaggle's evaluation metric of {competition}",
                                summary)
        direction = "lower" if chosen["lower_is_better"] else "higher"
        what = metrics.METRICS[chosen["metric"]].description
        metric_line = f"{what[:1].upper()}{what[1:]} ({chosen['metric']}); {direction} is better."
        text = DESCRIPTION_STUB.format(title=title, summary=summary or f"Kaggle competition {competition}.",
                                       competition=competition, metric_line=metric_line)
        (public / "description.md").write_text(text, encoding="utf-8")
        meta = {"name": dest.name, "title": title, "source": f"kaggle:{competition}",
                "url": f"https://www.kaggle.com/competitions/{competition}", **chosen}
        _write_json(staging / METADATA_FILE, meta)
        _load(staging, dest)

    return _build_atomically(dest, build)


# ---------------------------------------------------------------------------------------------
# the destination, built beside it and renamed into place


def _check_dest(dest: str | os.PathLike) -> Path:
    dest = Path(dest).expanduser().resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise TaskImportError(f"{dest} already exists and is not empty: choose a new folder for the task "
                              "(or delete this one first); an import never overwrites files")
    return dest


def _build_atomically(dest: Path, build: Callable[[Path], None]) -> Path:
    """Run ``build`` on a hidden folder beside ``dest``, then rename it to ``dest``; on failure remove it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.importing-", dir=dest.parent))
    try:
        build(staging)
        shutil.rmtree(staging / "download", ignore_errors=True)
        _check_dest(dest)  # nobody took the name meanwhile
        if dest.exists():
            dest.rmdir()  # empty: rename needs the name free
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


def _load(staging: Path, dest: Path):
    """``load_task`` on the folder being built; its errors name ``dest``, not the temporary folder."""
    try:
        return load_task(staging)
    except TaskError as exc:
        raise TaskImportError(f"The imported files do not make a usable task folder: "
                              f"{str(exc).replace(str(staging), str(dest))}") from exc


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# metrics


def map_metric_name(name: str) -> str | None:
    """Our registry name for a metric named by MLE-bench or Kaggle ("root-mean-squared-error", "AUC"...)."""
    if not name:
        return None
    spaced = re.sub(r"[-_\s]+", " ", str(name).strip().lower())
    found = metrics.resolve_metric_name(str(name)) or metrics.resolve_metric_name(spaced) or METRIC_NAMES.get(spaced)
    if found and _PER_COLUMN.search(str(name)) and not metrics.METRICS[found].per_column:
        return None  # an average over several targets is not the one-target metric of the same name
    return found


def _check_metric_option(given: str | None) -> None:
    """Reject an unknown --metric before any copying or downloading."""
    if given and metrics.resolve_metric_name(given) is None:
        raise TaskImportError(f"Unknown --metric {given!r}: use one of {', '.join(metrics.METRICS)}")


def _choose_metric(given: str | None, source_name: Any, where: str, description: str) -> dict:
    """task.json's metric fields: --metric first, then the source's metric name, then the description's words."""
    known = ", ".join(metrics.METRICS)
    if given:
        _check_metric_option(given)
        name = metrics.resolve_metric_name(given)
        assert name is not None  # _check_metric_option refused a name that resolves to no metric
    elif source_name:
        name = map_metric_name(str(source_name))
        if name is None:
            raise TaskImportError(
                f"The {where} is {source_name!r}, which none of our metrics computes ({known}): pass --metric NAME "
                "with one that scores the task the same way (the score is only comparable if it does)")
    else:
        detected = metrics.detect_metric(description)
        if detected is None:
            raise TaskImportError(f"The {where} is not given and the description names no known metric: "
                                  f"pass --metric NAME, one of {known}")
        name = detected[0]
    return {"metric": name, "lower_is_better": metrics.METRICS[name].lower_is_better}


# ---------------------------------------------------------------------------------------------
# MLE-bench


def _prepared_dir(src: Path) -> Path:
    for prepared in (src / "prepared", src):
        if (prepared / "public").is_dir() and (prepared / "private").is_dir():
            return prepared
    raise TaskImportError(
        f"{src} is not a prepared MLE-bench competition: it needs prepared/public/ and prepared/private/ "
        "(run `mlebench prepare -c ID` first, then pass mlebench:<data dir>/ID)")


def _config_path(prepared: Path, config: str | os.PathLike | None) -> Path | None:
    if config is not None:
        path = Path(config).expanduser()
        if not path.is_file():
            raise TaskImportError(f"--config {path} does not exist: give the competition's config.yaml")
        return path
    for folder in (prepared.parent, prepared):
        if (folder / "config.yaml").is_file():
            return folder / "config.yaml"
    return None  # the metric then comes from --metric or the description


def _read_config(path: Path | None) -> dict:
    if path is None:
        return {}
    import yaml  # PyYAML, a dependency of langchain-core

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise TaskImportError(f"Cannot read {path} ({exc}): give a valid MLE-bench config.yaml or leave it out "
                              "and pass --metric") from exc
    if not isinstance(data, dict):
        raise TaskImportError(f"{path} is not a YAML mapping: give the competition's MLE-bench config.yaml")
    return data


def _grader_name(conf: dict) -> str | None:
    grader = conf.get("grader")
    return str(grader["name"]) if isinstance(grader, dict) and grader.get("name") else None


def _mlebench_description(prepared: Path) -> str:
    for folder in (prepared / "public", prepared.parent):
        path = folder / "description.md"
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace").strip()
            if text:
                return text
    raise TaskImportError(f"{prepared / 'public'} has no description.md: copy the competition's description.md "
                          "from the mle-bench repository (mlebench/competitions/ID/description.md) there")


def _answers_file(prepared: Path, conf: dict) -> Path:
    """The private answers: config's dataset.answers if it resolves, else answers.csv or test.csv in private/."""
    private = prepared / "private"
    dataset = conf.get("dataset")
    named = dataset.get("answers") if isinstance(dataset, dict) else None
    candidates = []
    if named:
        named = Path(str(named))
        candidates += [named] if named.is_absolute() else [prepared.parent.parent / named, prepared.parent / named]
        candidates.append(private / named.name)
    candidates += [private / "answers.csv", private / "test.csv"]
    for path in candidates:
        if path.is_file():
            return path
    csvs = sorted(p for p in private.glob("*.csv") if not p.name.startswith("gold_submission"))
    if len(csvs) == 1:
        return csvs[0]
    raise TaskImportError(f"Cannot tell which file of {private} holds the answers (found {[p.name for p in csvs]}): "
                          "set dataset.answers in config.yaml to it")


def _answers_table(private: pd.DataFrame, task, source: Path) -> pd.DataFrame:
    """The id and the sample submission's prediction columns of the private answers, checked against test.csv."""
    columns = [task.id_column, *task.target_columns]
    missing = [c for c in columns if c not in private.columns]
    if missing:
        raise TaskImportError(
            f"The answers {source} lack the column(s) {missing} of the sample submission (they have "
            f"{list(private.columns)[:20]}): this competition's answers are not in submission form, so it "
            "cannot be imported as is")
    test = read_csv(task.path(task.test_file))
    if set(metrics.label_keys(private[task.id_column])) != set(metrics.label_keys(test[task.id_column])):
        raise TaskImportError(f"The {task.id_column} values of {source} differ from those of public/"
                              f"{task.test_file}: the answers must cover exactly the test rows")
    return private[columns]


def _check_gradable(staging: Path, dest: Path) -> None:
    """The answers themselves, submitted, must score: proves the metric fits the answers' form."""
    task = _load(staging, dest)
    perfect = staging / "perfect_submission.csv"
    shutil.copyfile(task.answers_path, perfect)
    try:
        result = grade_submission(task, perfect)
    finally:
        perfect.unlink()
    if result.score is None:
        raise TaskImportError(f"The answers cannot be scored with {task.metric}: {'; '.join(result.problems)}. "
                              "Pass --metric with one that fits the answers (labels vs probabilities)")


# ---------------------------------------------------------------------------------------------
# Kaggle


def _competition_slug(text: str) -> str:
    slug = str(text).strip().rstrip("/").rsplit("/", 1)[-1].lower()  # also accepts the competition's URL
    if not _COMPETITION.fullmatch(slug):
        raise TaskImportError(f"{text!r} is not a Kaggle competition name: use the name from the competition's "
                              "URL, e.g. kaggle:titanic for https://www.kaggle.com/competitions/titanic")
    return slug


def kaggle_credentials_found(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the official client will find credentials (environment variables or a kaggle.json)."""
    if (env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY")) or env.get("KAGGLE_API_TOKEN"):
        return True
    home = Path(os.path.expanduser("~"))
    config_home = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    folders = [Path(env["KAGGLE_CONFIG_DIR"])] if env.get("KAGGLE_CONFIG_DIR") else []
    folders += [home / ".kaggle", config_home / "kaggle"]
    return any((f / "kaggle.json").is_file() or (f / "access_token").is_file() for f in folders)


def _kaggle_installed() -> bool:
    try:
        return importlib.util.find_spec("kaggle") is not None
    except (ImportError, ValueError):  # ValueError: a module entry without a spec (e.g. blocked in sys.modules)
        return False


def kaggle_api():
    """An authenticated official ``KaggleApi``, or a TaskImportError saying what to install or set."""
    has_credentials = kaggle_credentials_found()
    if not _kaggle_installed():
        also = "" if has_credentials else f"; then give it credentials: {KAGGLE_CREDENTIALS_HELP}"
        raise TaskImportError(f"Importing from Kaggle needs the official client: pip install kaggle{also}")
    if not has_credentials:
        raise TaskImportError(f"No Kaggle credentials found: {KAGGLE_CREDENTIALS_HELP}")
    try:
        # Importing the package authenticates already (and raises without credentials).
        from kaggle.api.kaggle_api_extended import KaggleApi

        api = KaggleApi()
        api.authenticate()
    except ImportError as exc:
        raise TaskImportError(f"The kaggle package does not import ({exc}): pip install --upgrade kaggle") from exc
    except Exception as exc:  # the client's own authentication errors (OSError, ValueError...)
        raise TaskImportError(f"Kaggle rejected the credentials ({exc}): {KAGGLE_CREDENTIALS_HELP}") from exc
    return api


def kaggle_download(competition: str, folder: Path) -> dict:
    """The default downloader: the official client's competition download, plus the listing's metadata."""
    api = kaggle_api()
    try:
        api.competition_download_files(competition, path=str(folder), quiet=True)
    except Exception as exc:  # HTTP errors of the client: 403 rules not accepted, 404 unknown name...
        raise TaskImportError(
            f"Kaggle refused to download {competition!r} ({exc}): check the name, and accept the competition's "
            f"rules on https://www.kaggle.com/competitions/{competition}/rules with the account of your "
            "credentials") from exc
    return _kaggle_metadata(api, competition)


def _kaggle_metadata(api, competition: str) -> dict:
    """Title, one-line description and metric name from the competition listing; {} when unavailable."""
    try:
        listed = api.competitions_list(search=competition)
    except Exception:  # metadata is a nicety: the import goes on with a stub description
        return {}
    for item in getattr(listed, "competitions", listed) or []:
        ref = str(_field(item, "ref") or "").rstrip("/").rsplit("/", 1)[-1]
        if ref == competition:
            return {"title": _field(item, "title"), "description": _field(item, "description"),
                    "evaluation_metric": _field(item, "evaluation_metric", "evaluationMetric")}
    return {}


def _field(item, *names):
    for name in names:
        value = item.get(name) if isinstance(item, dict) else getattr(item, name, None)
        if value:
            return value
    return None


def _unpack_zips(folder: Path, rounds: int = 2) -> None:
    """Extract every zip in place (and the zips those held, e.g. train.csv.zip), deleting the archives."""
    for _ in range(rounds):
        archives = sorted(folder.rglob("*.zip"))
        for archive in archives:
            try:
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(archive.parent)  # zipfile drops absolute paths and '..' from member names
            except zipfile.BadZipFile as exc:
                raise TaskImportError(f"The download {archive.name} is not a valid zip ({exc}): try again") from exc
            archive.unlink()


def _gather_public(raw: Path, public: Path) -> Path:
    """Move the data into ``public`` with the names load_task expects: train.csv, test.csv, sample_submission.csv."""
    csvs = sorted((p for p in raw.rglob("*.csv") if p.is_file()), key=lambda p: (len(p.parts), p.name))
    train = _pick(csvs, "train.csv", re.compile(r"^train.*\.csv$", re.I), "training data")
    test = _pick(csvs, "test.csv", re.compile(r"^test.*\.csv$", re.I), "test data")
    sample = _pick(csvs, "sample_submission.csv", re.compile(r"submission.*\.csv$", re.I), "sample submission")
    root = train.parent
    picks = {train: "train.csv", test: "test.csv", sample: "sample_submission.csv"}
    outside = {path: name for path, name in picks.items() if path.parent != root}
    for path, name in outside.items():
        shutil.move(path, root / f".{name}")
    os.rename(root, public)
    for path, name in picks.items():
        current = public / (f".{name}" if path in outside else path.name)
        if current.name != name:
            if (public / name).exists():
                raise TaskImportError(f"Both {path.name} and {name} are in the download: import by hand")
            os.rename(current, public / name)
    return public


def _pick(csvs: list[Path], exact: str, pattern: re.Pattern, what: str) -> Path:
    for path in csvs:
        if path.name.lower() == exact:
            return path
    matches = [p for p in csvs if pattern.search(p.name)]
    if len(matches) == 1:
        return matches[0]
    found = [p.name for p in csvs]
    raise TaskImportError(
        f"Cannot tell which downloaded file is the {what} (CSV files: {found or 'none'}): this competition "
        "is not a single-table train/test task; build its task folder by hand (public/train.csv, test.csv, "
        "sample_submission.csv, description.md)")
