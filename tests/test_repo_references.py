"""Every reference in the repository resolves inside it.

Code, tests, benches and docs cite documents (``docs/onnx.md §4``, ``docs/protocol.md,
"Decoder limits"``) and paths. A reference to a file outside the checkout (the team's
``../shared`` folder, an absolute path on one machine) or to a document that does not exist
means a reader of a clean clone cannot follow it; so does a section number or title that is
not in the document.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Folders that are build output or tool state, never sources.
_SKIPPED_DIRS = {".git", "target", ".venv", "__pycache__", ".mypy_cache", ".pytest_cache"}
_SKIPPED_DIRS |= {".hypothesis", ".ruff_cache", "results", "build", "dist"}

# A Markdown file name, optionally with a relative folder: ``docs/onnx.md``, ``../README.md``.
_MARKDOWN_REFERENCE = re.compile(r"(?<![\w/.:-])((?:\.{1,2}/)*[\w.-]+(?:/[\w.-]+)*\.md)\b")
# A path that starts by going up: ``../shared/x``, ``../../docs``.
_UPWARD_PATH = re.compile(r"(?<![\w.])((?:\.\./)+[\w.-]+(?:/[\w.-]+)*)")
# Put on a line whose ``../`` is data, not a path of this repository (an archive entry).
_NOT_A_REFERENCE = "not a repository path"
# Absolute paths of the machines this was developed on.
_MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|root|home/\w+)/[\w.-]+")
# Names of team notes that are not part of the repository, cited with or without ``.md``.
_TEAM_NOTES = re.compile(r"\b(?:ONNX-CONTRACT|SEED-API|PROTOCOL\.md|PROTOCOL [A-Z]\.\d|STYLE\.md)")
# ``docs/x.md §4`` and ``docs/x.md, "Some title"``: a section of one of our documents.
_SECTION_NUMBER = re.compile(r"\b(docs/[\w.-]+\.md),? §\s*(\d+)")
_SECTION_TITLE = re.compile(r"\b(docs/[\w.-]+\.md),? \(?\"([^\"]+)\"")


def repository_files() -> list[Path]:
    """The files of the checkout: what git tracks or would add, else every file on disk."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        paths = [ROOT / name for name in listed.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        paths = [
            path
            for path in ROOT.rglob("*")
            if not _SKIPPED_DIRS & set(path.relative_to(ROOT).parts[:-1])
        ]
    return [path for path in paths if path.is_file()]


def text_lines(path: Path) -> list[str]:
    """The lines of a text file; none for a binary one."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return []


def resolves(reference: str, citing_file: Path) -> bool:
    """Whether ``reference`` names an existing file, read from the citing file's folder, the
    repository root or docs/."""
    return any((base / reference).exists() for base in (citing_file.parent, ROOT, ROOT / "docs"))


def resolves_upward(reference: str, citing_file: Path) -> bool:
    """Whether the upward path ``reference`` names an existing file or folder inside the
    repository, read from the citing file's folder or one above it (a crate's paths are
    relative to its manifest's folder)."""
    for base in citing_file.parents:
        target = (base / reference).resolve()
        if target.is_relative_to(ROOT) and target.exists():
            return True
        if base == ROOT:
            return False
    return False


def headings(document: Path) -> list[str]:
    return [line.lstrip("#").strip() for line in text_lines(document) if line.startswith("#")]


@pytest.fixture(scope="module")
def cited_lines() -> list[tuple[Path, int, str]]:
    this_file = Path(__file__).resolve()
    return [
        (path, number, line)
        for path in repository_files()
        if path.resolve() != this_file
        for number, line in enumerate(text_lines(path), start=1)
    ]


def where(path: Path, number: int) -> str:
    return f"{path.relative_to(ROOT)}:{number}"


def test_nothing_points_outside_the_repository(cited_lines):
    found = []
    for path, number, line in cited_lines:
        for match in _UPWARD_PATH.finditer(line):
            if _NOT_A_REFERENCE not in line and not resolves_upward(match.group(1), path):
                found.append(f"{where(path, number)}: {match.group(1)}")
        for match in _MACHINE_PATH.finditer(line):
            found.append(f"{where(path, number)}: {match.group(0)}")
        for match in _TEAM_NOTES.finditer(line):
            found.append(f"{where(path, number)}: {match.group(0)} (not in the repository)")
    assert not found, "references outside the repository:\n" + "\n".join(found)


def test_every_cited_document_exists(cited_lines):
    missing = []
    for path, number, line in cited_lines:
        for match in _MARKDOWN_REFERENCE.finditer(line):
            reference = match.group(1)
            if "://" in line[: match.start()].rsplit(" ", 1)[-1]:
                continue  # part of a URL
            if not resolves(reference, path):
                missing.append(f"{where(path, number)}: {reference}")
    assert not missing, "documents that do not exist:\n" + "\n".join(missing)


def test_every_cited_section_exists(cited_lines):
    missing = []
    checked = 0
    for path, number, line in cited_lines:
        for match in _SECTION_NUMBER.finditer(line):
            document, section = match.groups()
            checked += 1
            if not any(h.startswith(f"{section}.") for h in headings(ROOT / document)):
                missing.append(f"{where(path, number)}: {document} has no section {section}")
        for match in _SECTION_TITLE.finditer(line):
            document, title = match.groups()
            checked += 1
            if not any(title.lower() in h.lower() for h in headings(ROOT / document)):
                missing.append(f"{where(path, number)}: {document} has no section {title!r}")
    assert checked > 0, "no section references found: the patterns no longer match the code"
    assert not missing, "sections that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("see ../shared/ONNX-CONTRACT.md", "outside"),
        ("built by ``../shared/anchors/mlagents-venv.sh``", "outside"),
        ("(ONNX-CONTRACT §4)", "outside"),
        ("cache in /work/shared/x", "outside"),
        ("see docs/no-such-page.md", "missing document"),
        ("see docs/onnx.md §99", "missing section"),
        ('see docs/protocol.md, "No such title"', "missing section"),
    ],
)
def test_the_checks_catch_bad_references(tmp_path, line, problem):
    """The checks above fail on each kind of bad reference (so that their passing means
    something)."""
    cited = [(ROOT / "python" / "example.py", 1, line)]
    check = {
        "outside": test_nothing_points_outside_the_repository,
        "missing document": test_every_cited_document_exists,
        "missing section": test_every_cited_section_exists,
    }[problem]
    with pytest.raises(AssertionError):
        check(cited)
