"""The docs stay true after restructures: every link, anchor and path they name exists.

Checked in every Markdown file a learner reads: each relative link and image resolves to a file or
folder of the repository (and each ``#anchor`` to a heading of its target, by GitHub's slug rules),
each path in backticks (``include/source/transform.py``, ``tests/.../test_<dag_id>.py``) names a
real file, and each dotted module (``include.observing.lineage.ReportedLineageExtractor``) a real
module and name. Links to other sites are not fetched: they are outside the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = sorted(
    {
        REPO / "README.md",
        *(REPO / "docs").glob("*.md"),
        REPO / "bench" / "README.md",
        REPO / "plugins" / "README.md",
        REPO / "data" / "tlc" / "README.md",
    }
)
README_MAX_LINES = 250

# Written on other branches (docs/extending.md, docs/own-airflow.md, docs/dbt.md; the lead's
# destination contract and the dbt project) and referenced here already. The lead empties this
# list at merge: test_planned_paths_are_still_missing fails as soon as one of them exists.
PLANNED_ON_OTHER_BRANCHES = (
    "docs/dbt.md",
    "include/dbt/",
)
# What the benchmarks write when they run: named in bench/README.md, git-ignored, never committed.
GENERATED = ("bench/results/", "bench/cache/")

REPO_DIRS = ("dags", "include", "tests", "scripts", "local_stack", "plugins", "docs", "config", "bench")
FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)
EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
REPO_PATH = re.compile(rf"^(?:{'|'.join(REPO_DIRS)})/\S*$")
DOTTED_MODULE = re.compile(rf"^(?:{'|'.join(REPO_DIRS)})(?:\.\w+)+$")
PLACEHOLDER = re.compile(r"<[^>]*>|\{[^}]*\}|\*|…|\.\.\.")


def _relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _without_fences(text: str) -> str:
    return FENCE.sub("", text)


def _prose(text: str) -> str:
    """The text links are read from: no code blocks, no code spans."""
    return INLINE_CODE.sub("", _without_fences(text))


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text, lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    slugs: set[str] = set()
    repeats: dict[str, int] = {}
    for _, heading in HEADING.findall(_without_fences(text)):
        slug = github_slug(heading)
        repeats[slug] = repeats.get(slug, -1) + 1
        slugs.add(slug if repeats[slug] == 0 else f"{slug}-{repeats[slug]}")  # GitHub numbers repeats
    return slugs


def _planned(repo_path: str) -> bool:
    return any(
        repo_path == planned or (planned.endswith("/") and repo_path.startswith(planned))
        for planned in PLANNED_ON_OTHER_BRANCHES
    )


def _generated(repo_path: str) -> bool:
    return repo_path.startswith(GENERATED)


def _read(doc: Path) -> str:
    return doc.read_text(encoding="utf-8")


def links(text: str) -> list[str]:
    prose = _prose(text)
    return LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def link_problems(doc: Path, text: str) -> list[str]:
    problems = []
    for target in links(text):
        if EXTERNAL.match(target):
            continue  # another site: not part of this repository
        path_part, _, anchor = target.partition("#")
        resolved = (doc.parent / path_part).resolve() if path_part else doc
        if not resolved.is_relative_to(REPO):
            problems.append(f"{target}: outside the repository")
            continue
        repo_path = _relative(resolved) + ("/" if path_part.endswith("/") else "")
        if path_part and not resolved.exists():
            if not _planned(repo_path):
                problems.append(f"{target}: no file {repo_path}")
            continue
        target_text = text if resolved == doc else _read(resolved) if resolved.suffix == ".md" else None
        if anchor and target_text is not None and anchor not in anchors(target_text):
            problems.append(f"{target}: no heading #{anchor} in {_relative(resolved)}")
    return problems


def code_words(text: str) -> list[str]:
    """Every word of the code spans and code blocks, stripped of the punctuation around it."""
    code = [span for _, span in INLINE_CODE.findall(_without_fences(text))]
    code += [block.group(0) for block in FENCE.finditer(text)]
    words = (word.strip("'\"()[],;:.!?") for chunk in code for word in chunk.split())
    return [word for word in words if word]


def _template_matches(repo_path: str) -> bool:
    """A path with placeholders (``tests/.../test_<dag_id>.py``) names at least one real file."""
    pattern = PLACEHOLDER.sub("*", repo_path).replace("/*/", "/**/")
    return any(REPO.glob(pattern.rstrip("/")))


def _module_resolves(dotted: str) -> bool:
    """``include.observing.lineage.ReportedLineageExtractor``: a module, then names defined in it."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = REPO.joinpath(*parts[:cut])
        module = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if module.is_file():
            rest = parts[cut:]
            source = module.read_text(encoding="utf-8")
            # A name is defined where a line starts with it, or with def or class and it.
            defined = re.compile(rf"^(?:def |class )?{rest[0]}\b", re.MULTILINE) if rest else None
            return defined is None or defined.search(source) is not None
    return False


def path_problems(text: str) -> list[str]:
    problems = []
    for word in code_words(text):
        if DOTTED_MODULE.match(word):
            if not _module_resolves(word):
                problems.append(f"{word}: no such module or name")
            continue
        if not REPO_PATH.match(word):
            continue
        repo_path = word.split("::")[0].split("#")[0]  # file::function, file#anchor
        if _planned(repo_path) or _generated(repo_path):
            continue
        if PLACEHOLDER.search(repo_path):
            if not _template_matches(repo_path):
                problems.append(f"{word}: no file matches it")
        elif not (REPO / repo_path).exists():
            problems.append(f"{word}: no such file or folder")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=_relative)
def test_every_relative_link_and_anchor_resolves(doc):
    assert link_problems(doc, _read(doc)) == []


@pytest.mark.parametrize("doc", DOCS, ids=_relative)
def test_every_repository_path_named_in_code_exists(doc):
    assert path_problems(_read(doc)) == []


def test_readme_reads_in_ten_minutes():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES


def test_the_documents_checked_are_there():
    assert all(doc.is_file() for doc in DOCS)


def test_planned_paths_are_still_missing():
    # Once one exists (at merge), its entry in PLANNED_ON_OTHER_BRANCHES hides nothing: remove it.
    present = [planned for planned in PLANNED_ON_OTHER_BRANCHES if (REPO / planned).exists()]
    assert present == []


def test_generated_outputs_are_git_ignored():
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert all(generated in ignored for generated in GENERATED)


def test_the_checks_catch_what_they_should():
    # The checkers themselves, on a doc with one of each kind of mistake and one of each right form;
    # it is never written: its path only says where its relative links start from.
    doc = REPO / "docs" / "probe.md"
    text = (
        "# A heading, with `code`\n\n"
        "[ok](../README.md) [ok](#a-heading-with-code) [ok](flows.md#sources) [out](https://example.com)\n"
        "[broken](nowhere.md) [bad anchor](#no-such-heading) [bad anchor](flows.md#nope)\n\n"
        "`include/source/transform.py` `include/nowhere.py` `tests/.../test_<dag_id>.py` "
        "`dags/<nothing>_at_all.py` `include.observing.lineage.ReportedLineageExtractor` "
        "`include.observing.lineage.NoSuchName`\n\n"
        "```bash\nscripts/nowhere.sh\n# [not a link](nowhere.md)\n```\n"
    )
    assert link_problems(doc, text) == [
        "nowhere.md: no file docs/nowhere.md",
        "#no-such-heading: no heading #no-such-heading in docs/probe.md",
        "flows.md#nope: no heading #nope in docs/flows.md",
    ]
    assert path_problems(text) == [
        "include/nowhere.py: no such file or folder",
        "dags/<nothing>_at_all.py: no file matches it",
        "include.observing.lineage.NoSuchName: no such module or name",
        "scripts/nowhere.sh: no such file or folder",
    ]


def test_github_slugs():
    assert github_slug("1. Configure `.env`") == "1-configure-env"
    assert github_slug("`green_taxi_etl`: the course's green-taxi pipeline") == (
        "green_taxi_etl-the-courses-green-taxi-pipeline"
    )
    assert anchors("# Notes\n## Notes\n") == {"notes", "notes-1"}
