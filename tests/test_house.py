"""The repository holds its own design: no file names a path outside it, and every doc it names exists.

A newcomer has the repository, not our notes. So no tracked file may point outside it (a path under the machine's
work folder, a sibling ``shared`` folder, or the notes that lived there), and every ``docs/<name>.md`` named in code,
tests or docs must exist, with the section it names where it names one (``docs/platform-facts.md, "QuickBooks:
throttling"``).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: What points outside the repository. Spelled in pieces so that this file does not match itself.
OUTSIDE = (
    "/wo" + "rk/",
    "../sha" + "red",
    "sha" + "red/cases",
    "sha" + "red/reference",
    "DESI" + "GN.md",
    "DEPENDEN" + "CIES.md",
)

#: Never read: pictures and other binary files, and the README's screenshots.
SKIP_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".ico", ".pdf", ".gz", ".zip", ".woff", ".woff2"})
SKIP_DIRS = ("docs/screenshots/",)

DOC_PATH = re.compile(r"docs/[A-Za-z0-9_./-]+\.md")
#: ``docs/<name>.md, "<section>"``: a reference to one section of a doc (after whitespace is folded).
DOC_SECTION = re.compile(r"(docs/[A-Za-z0-9_./-]+\.md),? \"([^\"]+)\"")


def tracked_files() -> list[str]:
    """The repository's files: ``git ls-files``, or, outside a git checkout, every file but the usual clutter."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        return [p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        ignored = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "demo-data"}
        return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                if p.is_file() and not ignored.intersection(p.relative_to(ROOT).parts)]


def text_files() -> dict[str, str]:
    """Every tracked text file's content, by path (binary files and screenshots left out)."""
    files: dict[str, str] = {}
    for rel in tracked_files():
        path = ROOT / rel
        if rel.startswith(SKIP_DIRS) or path.suffix.lower() in SKIP_SUFFIXES or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue
        files[rel] = data.decode("utf-8", errors="replace")
    return files


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    found = text_files()
    assert "README.md" in found and "sync/engine.py" in found
    return found


def test_no_file_names_a_path_outside_the_repository(files: dict[str, str]) -> None:
    hits = [f"{rel}:{n}: {line.strip()[:100]}"
            for rel, text in files.items()
            for n, line in enumerate(text.splitlines(), 1)
            if any(needle in line for needle in OUTSIDE)]
    assert hits == [], "paths outside the repository:\n" + "\n".join(hits)


def _headings(doc: str) -> set[str]:
    return {line.lstrip("#").strip() for line in doc.splitlines() if line.startswith("#")}


def test_every_doc_named_exists_with_its_section(files: dict[str, str]) -> None:
    missing: list[str] = []
    for rel, text in files.items():
        folded = re.sub(r"\s+", " ", text)
        for name in sorted(set(DOC_PATH.findall(folded))):
            if not (ROOT / name).is_file():
                missing.append(f"{rel} names {name}, which does not exist")
        for name, section in DOC_SECTION.findall(folded):
            if (ROOT / name).is_file() and section not in _headings((ROOT / name).read_text(encoding="utf-8")):
                missing.append(f'{rel} names {name}, "{section}": no such section')
    assert missing == [], "\n".join(sorted(set(missing)))


def test_the_readme_points_to_the_design() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1]
    assert "docs/architecture.md" in layout and "docs/platform-facts.md" in layout


def test_relative_links_between_docs_resolve(files: dict[str, str]) -> None:
    broken = []
    for rel, text in files.items():
        if not (rel.startswith("docs/") and rel.endswith(".md")):
            continue
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (ROOT / rel).parent.joinpath(target).resolve().exists():
                broken.append(f"{rel} links {target}")
    assert broken == []


def test_every_setting_is_in_env_example_and_the_readme_table() -> None:
    """`.env.example` lists every setting with a line ``# NAME=...``; README's Configuration table names each."""
    from bot.config import Settings

    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    table = (ROOT / "README.md").read_text(encoding="utf-8").split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = [str(field.alias) for field in Settings.model_fields.values()]
    assert len(names) >= 38
    missing_example = [n for n in names if not re.search(rf"^# {n}=", example, re.MULTILINE)]
    missing_table = [n for n in names if f"`{n}`" not in table]
    assert missing_example == [] and missing_table == []


def _imports_of(path: Path, modules: set[str]) -> set[str]:
    """The project modules ``path`` imports, anywhere in it (a function's own imports count too). ``from pkg import
    sub`` counts as an import of ``pkg.sub`` when that is a module."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules
            found |= subs
            if len(subs) < len(node.names) and node.module in modules:
                found.add(node.module)
    return found


def test_no_import_circles() -> None:
    """No module of bot/, sync/, handlers/ or sandbox/ imports, directly or through others, a module that imports
    it back (lazy imports inside functions included: they are circles too, only deferred)."""
    files = {}
    for package in ("bot", "sync", "handlers", "sandbox"):
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            files[name] = path
    graph = {name: _imports_of(path, set(files)) - {name} for name, path in files.items()}
    circles = []
    for start in graph:  # a module that reaches itself again
        seen, stack = set(), list(graph[start])
        while stack:
            node = stack.pop()
            if node == start:
                circles.append(start)
                break
            if node not in seen:
                seen.add(node)
                stack.extend(graph[node])
    assert circles == []
