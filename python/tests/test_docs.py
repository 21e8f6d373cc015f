"""Every ```python block of docs/package.md runs against the converted tiny sample."""

import re

from conftest import ROOT


def test_package_page_snippets_run(dataset):
    page = ROOT / "docs" / "package.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    assert len(blocks) >= 4, "docs/package.md lost its examples"
    for i, code in enumerate(blocks):
        code = code.replace('"out/qg1024"', repr(str(dataset)))
        exec(compile(code, f"docs/package.md snippet {i + 1}", "exec"), {})
