"""Static checks on generated code before it runs: refuse what a training script never needs.

A cheap first line of defence (the sandbox is the real one): it reads the script's syntax tree and
names each problem in words the model can act on, e.g. "line 3: imports socket (network access)".
A refused script goes back to the model like any error. The checks look for intent, not for every
possible trick; obfuscated code (exec, __import__, getattr on modules) is refused for that reason.
"""

from __future__ import annotations

import ast
import re

NETWORK_MODULES = {"socket", "ssl", "urllib", "urllib3", "requests", "http", "httpx", "aiohttp", "ftplib",
                   "smtplib", "poplib", "imaplib", "telnetlib", "websocket", "websockets", "paramiko", "xmlrpc",
                   "socketserver", "kaggle", "huggingface_hub", "boto3", "botocore"}
PROCESS_MODULES = {"subprocess", "pty", "pexpect", "sh", "multiprocessing.connection"}
# os functions a training script never calls.
OS_FORBIDDEN = {"system", "popen", "fork", "forkpty", "setsid", "kill", "killpg", "spawnl", "spawnle", "spawnlp",
                "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "posix_spawn", "posix_spawnp", "execl",
                "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe", "chdir", "chroot", "chmod",
                "chown", "rmdir", "removedirs", "rename", "renames", "replace", "symlink", "link", "putenv",
                "unsetenv", "setuid", "setgid", "nice", "daemon", "mkfifo", "mknod"}
# Methods (of any object, e.g. pathlib.Path) that make links: a link in the attempt folder could point
# the agent, which reads the folder after the run, at a file outside it.
LINK_METHODS = {"symlink_to", "hardlink_to", "link_to"}
DYNAMIC_BUILTINS = {"exec", "eval", "compile", "__import__", "breakpoint"}
DELETERS = {"remove", "unlink", "rmtree", "rmdir"}
WRITERS = {"to_csv", "to_parquet", "to_pickle", "to_json", "to_feather", "write_text", "write_bytes", "savefig",
           "save", "dump", "copy", "copyfile", "copy2", "savetxt", "touch", "truncate"}
WRITE_MODES = re.compile(r"[wax+]")
ABSOLUTE_PATH = re.compile(r"^(/|~|[A-Za-z]:\\)[A-Za-z0-9_.~-]")
PARENT_PATH = re.compile(r"(^|[/\\])\.\.([/\\]|$)")
INSTALL = re.compile(r"\b(pip3?|conda|apt(-get)?|mamba)\s+install\b")
URL = re.compile(r"^(https?|ftps?|s3|gs|wss?)://", re.IGNORECASE)
ANSWER_WORDS = re.compile(r"(^|[/\\_.-])(answers?|private|solution_key|ground_truth)([/\\_.-]|$)", re.IGNORECASE)


def _module_problem(name: str) -> str | None:
    top = name.split(".")[0]
    if top in NETWORK_MODULES or name in NETWORK_MODULES:
        return "network access"
    if top in PROCESS_MODULES or name in PROCESS_MODULES:
        return "starting processes or shells"
    if top in {"pip", "ensurepip"}:
        return "installing packages"
    if top in {"ctypes", "cffi", "importlib"}:
        return "low-level or dynamic imports"
    return None


def _string_problem(text: str) -> str | None:
    if INSTALL.search(text):
        return "installing packages"
    if URL.match(text.strip()):
        return "network access (a URL; pandas and numpy would download it)"
    if ABSOLUTE_PATH.match(text) or PARENT_PATH.search(text):
        return "a path outside the script's folder (use ./input/... and the current folder only)"
    if ANSWER_WORDS.search(text):
        return "what looks like the hidden answers (never read them; validate on a split of train)"
    return None


def _call_name(node: ast.Call) -> tuple[str | None, str]:
    """('os', 'system') for os.system(...), (None, 'eval') for eval(...)."""
    func = node.func
    if isinstance(func, ast.Name):
        return None, func.id
    if isinstance(func, ast.Attribute):
        owner = func.value
        if isinstance(owner, ast.Name):
            return owner.id, func.attr
        if isinstance(owner, ast.Attribute):
            return owner.attr, func.attr
        return "", func.attr
    return None, ""


def _mentions_input(node: ast.Call) -> bool:
    """Whether an argument of this call (not the object it is called on) names the input folder."""
    for arg in [*node.args, *(k.value for k in node.keywords)]:
        for part in ast.walk(arg):
            if isinstance(part, ast.Constant) and isinstance(part.value, str) and "input" in part.value:
                return True
    return False


def _opens_for_writing(node: ast.Call) -> bool:
    modes = [node.args[1]] if len(node.args) > 1 else [k.value for k in node.keywords if k.arg == "mode"]
    return any(isinstance(m, ast.Constant) and isinstance(m.value, str) and WRITE_MODES.search(m.value)
               for m in modes)


def _call_problem(node: ast.Call) -> str | None:
    owner, name = _call_name(node)
    if owner is None and name in DYNAMIC_BUILTINS:
        return f"calls {name}() (dynamic code)"
    if owner == "os" and name in OS_FORBIDDEN:
        return f"calls os.{name}() (not needed by a training script)"
    if name in DELETERS and (name == "rmtree" or _mentions_input(node)):
        return f"deletes files with {name}()"
    if _mentions_input(node) and (name in WRITERS or name == "open" and _opens_for_writing(node)):
        return f"writes into the input folder with {name}() (the task data is read-only)"
    if owner is not None and name in LINK_METHODS:
        return f"makes a link with {name}() (write plain files only)"
    if owner == "shutil" and name in {"move", "copytree", "chown"}:
        return f"calls shutil.{name}() (moves files around)"
    if name == "getattr" and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in {"os", "sys",
                                                                                                    "builtins"}:
        return f"looks up {node.args[0].id} attributes dynamically"
    return None


def check_script(code: str) -> list[str]:
    """Problems found in `code`, one line each ("line N: ..."); empty when the script may run.

    Syntax errors are not reported here: running the script reports them with a proper traceback.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []
    problems: list[str] = []
    for node in ast.walk(tree):
        problem = None
        if isinstance(node, ast.Import):
            problem = next((f"imports {a.name} ({p})" for a in node.names if (p := _module_problem(a.name))), None)
        elif isinstance(node, ast.ImportFrom) and node.module:
            reason = _module_problem(node.module)
            if reason is None and node.module == "os":
                bad = [a.name for a in node.names if a.name in OS_FORBIDDEN]
                reason = f"os.{bad[0]} is not needed by a training script" if bad else None
            problem = reason and f"imports from {node.module} ({reason})"
        elif isinstance(node, ast.Call):
            problem = _call_problem(node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            reason = _string_problem(node.value)
            problem = reason and f"uses {node.value[:60]!r}: {reason}"
        elif isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"} and \
                isinstance(node.value, ast.Name) and node.value.id == "os":
            problem = "reads environment variables (the script gets no secrets; it needs none)"
        if problem:
            problems.append(f"line {getattr(node, 'lineno', '?')}: {problem}")
    return sorted(set(problems), key=_line_number)


def _line_number(problem: str) -> int:
    match = re.match(r"line (\d+)", problem)
    return int(match.group(1)) if match else 0
