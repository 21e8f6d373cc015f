"""Runs every ```python block of a documentation page (docs/python.md, docs/loader.md) against a
dataset directory.

Usage: python3 readme_snippets.py PAGE.md DATASET_DIR

The snippets are written for `out/qg1024`; that path is replaced by DATASET_DIR. A snippet
that raises fails the run.
"""
import re
import sys


def main(readme: str, dataset: str) -> None:
    text = open(readme).read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, f"{sys.argv[1]} has no python snippets"
    for i, code in enumerate(blocks):
        print(f"--- snippet {i + 1}/{len(blocks)}")
        exec(compile(code.replace("out/qg1024", dataset), f"{sys.argv[1]} snippet {i + 1}", "exec"), {})
    print(f"readme_snippets: {len(blocks)} snippets ran")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
