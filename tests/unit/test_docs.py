"""The repository stands alone: its documents link only to files it has (and to headings
those files have), cite no design document from elsewhere, and carry the licence that
pyproject.toml names."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "clients/node/README.md"]
TEXT_SUFFIXES = {".py", ".md", ".proto", ".toml", ".js", ".json", ".txt", ".cfg", ".pyi"}
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache",
             ".hypothesis", "build", "dist"}  # fmt: skip
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", path.read_text(), re.M)}


def _repo_text_files() -> list[Path]:
    out = []
    for path in ROOT.rglob("*"):
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in path.parts):
            continue
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.name == "Dockerfile"):
            out.append(path)
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    for target in _LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path_part, _, anchor = target.partition("#")
        dest = (doc.parent / path_part).resolve() if path_part else doc
        assert dest.exists(), f"{doc.name}: link to missing {target}"
        assert ROOT in dest.parents or dest == ROOT, f"{doc.name}: {target} leaves the repo"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{doc.name}: no heading #{anchor} in {dest.name}"


def test_no_design_document_from_outside_is_cited() -> None:
    cited = re.compile(r"\bDESIGN(\.md| ?§| section)")
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in _repo_text_files()
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if cited.search(line) and p != Path(__file__).resolve()
    ]
    assert offenders == []


def test_architecture_document_covers_the_design() -> None:
    text = (ROOT / "docs/architecture.md").read_text()
    for heading in ("Scenario models", "Rules-based margin", "The pre-trade decision",
                    "Architecture", "Events, journal, snapshots, recovery"):  # fmt: skip
        assert re.search(rf"^## \d+\. {re.escape(heading)}$", text, re.M), heading
    for term in ("`deribit`", "`span`", "batch", "always", "none", "torn tail", "apply"):
        assert term in text, term


def test_licence_file_matches_pyproject() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["license"] == {"text": "Apache-2.0"}
    licence = (ROOT / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in licence
