"""The README and docs/: every relative link leads to a file (and heading) that exists, the README
keeps what a new user needs on it, and the subcommands' --help names the `glyphlab X` command."""
from __future__ import annotations

import re

import pytest

from helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def anchors(path) -> set[str]:
    """GitHub's heading anchors of a markdown file: lower case, punctuation dropped, spaces → '-'."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_leads_somewhere(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: link to {target}: no {file}"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file), f"{page.name}: link to {target}: no such heading in {file.name}"


def test_readme_keeps_the_start_and_links_every_docs_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for needed in ("make run", "make test", "mlflow ui --backend-store-uri", "## Scaling out",
                   'eval "$(glyphlab -sc install=bash)"'):
        assert needed in readme, needed
    for page in (ROOT / "docs").glob("*.md"):
        assert f"(docs/{page.name}" in readme, f"README does not link docs/{page.name}"
    # every config group, with an example of it
    for group in (ROOT / "conf").iterdir():
        if group.is_dir() and group.name != "hydra" and group.name != "__pycache__":
            row = re.search(rf"^\| \[`{group.name}`\]\(.*$", readme, flags=re.M)
            assert row, f"README's config table has no row for {group.name}"
            assert "`" in row.group(0).rsplit("|", 2)[-2], f"no example for {group.name}"


@pytest.mark.parametrize("command", ["compare", "predict", "draw", "fonts"])
def test_subcommand_help_names_the_glyphlab_command(command, capsys):
    from glyphlab import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: glyphlab {command} "), out[:200]
    assert "python -m" not in out and f"glyphlab {command} --" in out
