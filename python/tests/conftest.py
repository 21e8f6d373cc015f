"""Fixtures of the Python package's tests: the committed 64-jet sample converted by
``jetpipe.run`` (small shards and row groups, so batches cross both), and the ``pipeline`` CLI
the package is compared with.

Set JETPIPE_PIPELINE to the ``pipeline`` binary (``.ci/test-python`` does). Where it is not
found the CLI comparisons skip, unless JETPIPE_REQUIRE_ALL=1 (CI), which makes them fail, as it
does for the PyTorch tests when torch is not installed.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import jetpipe

ROOT = Path(__file__).resolve().parents[2]
REQUIRE_ALL = os.environ.get("JETPIPE_REQUIRE_ALL") == "1"


def need(ok: bool, why: str) -> None:
    """Skips the test when `ok` is false, or fails it when everything is required."""
    if not ok:
        if REQUIRE_ALL:
            pytest.fail(f"{why} (JETPIPE_REQUIRE_ALL=1)")
        pytest.skip(why)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("data")
    yaml = d / "tiny.yaml"
    yaml.write_text(
        "name: qg_tiny_python\n"
        f"source:\n  files: [{ROOT / 'data-samples' / 'qg_tiny.h5'}]\n"
        f"sink:\n  path: {d / 'out'}\n  shard_size: 20\n  row_group_size: 8\n"
    )
    summary = jetpipe.run(yaml)
    assert summary["jets_written"] == 64, summary
    return Path(summary["output"])


@pytest.fixture(scope="session")
def pipeline() -> str:
    exe = os.environ.get("JETPIPE_PIPELINE") or shutil.which("pipeline")
    if exe is None:
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        exe = str(target / "debug" / "pipeline")
    need(Path(exe).is_file(), f"no pipeline binary at {exe} (set JETPIPE_PIPELINE)")
    return exe


def cli(exe: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([exe, *args], capture_output=True, text=True)
    if ok:
        assert r.returncode == 0, r.stderr
    return r
