"""docs/architecture.md names real files: every repository path it mentions exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_path_the_architecture_page_names_exists():
    text = (ROOT / "docs" / "architecture.md").read_text()
    paths = set(re.findall(r"(?<![\w./])((?:streamsr|train|benchmarks|tests|docs|engines)/[\w./-]*)", text))
    assert len(paths) > 20  # the page names the parts; an empty match would test nothing
    missing = sorted(p for p in paths if not (ROOT / p.rstrip("/.")).exists())
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"
