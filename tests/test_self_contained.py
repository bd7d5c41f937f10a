"""The project speaks for itself: no file of the repository points to a document outside it, and every
``docs/protocols.md §X.Y`` citation names a section that exists there."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".git", ".venv", "runs", ".cache", "__pycache__", ".pytest_cache", "build", "dist"}
FORBIDDEN = re.compile(r"papers\.md|\.\./shared|style\.md")
CITATION = re.compile(r"docs/protocols\.md`{0,2}\s*(?:\\u00a7|§)\s*([0-9]+(?:\.[0-9]+)?)")


def _files():
    for path in ROOT.rglob("*"):
        if path.is_file() and not (SKIP & set(path.relative_to(ROOT).parts)) and path.suffix in {
                ".py", ".md", ".json", ".yaml", ".yml", ".ipynb", ".txt", ".toml", ".cfg", ""}:
            yield path


def test_no_file_mentions_a_document_outside_the_repository():
    hits = []
    for path in _files():
        text = path.read_text(errors="ignore")
        hits += [f"{path.relative_to(ROOT)}:{i}" for i, line in enumerate(text.splitlines(), 1) if FORBIDDEN.search(line)]
    assert not hits, f"references outside the repository: {hits[:20]}"


def test_every_protocol_citation_names_an_existing_section():
    doc = (ROOT / "docs" / "protocols.md").read_text()
    sections = set(re.findall(r"^#+\s*§([0-9]+(?:\.[0-9]+)?)\b", doc, flags=re.M))
    missing = []
    for path in _files():
        text = path.read_text(errors="ignore").replace("\n", " ")
        missing += [f"{path.relative_to(ROOT)}: §{n}" for n in CITATION.findall(text) if n not in sections]
    assert sections and not missing, f"citations of sections docs/protocols.md does not have: {missing[:20]}"
