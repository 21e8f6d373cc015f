"""jetpipe.run and jetpipe.sql: the conversion and the SQL engine of the CLI, from Python."""

import json

import numpy as np
import pyarrow.dataset as pads
import pytest
from conftest import ROOT, cli

import jetpipe


def test_run_resumes_and_refuses_bad_input(dataset, tmp_path):
    yaml = tmp_path / "tiny.yaml"
    yaml.write_text(
        f"name: qg_tiny_python\nsource:\n  files: [{ROOT / 'data-samples' / 'qg_tiny.h5'}]\n"
        f"sink:\n  path: {tmp_path / 'out'}\n"
    )
    first = jetpipe.run(yaml, limit=40)
    assert first["jets_written"] == 40 and first["units_kept"] == 0
    assert (tmp_path / "out" / "manifest.json").is_file()
    again = jetpipe.run(yaml, limit=40)
    assert again["units_kept"] == 1 and again["jets_converted"] == 0
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        jetpipe.run(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.read_text() + "stagez: {}\n")
    with pytest.raises(ValueError, match=rf"(?s){bad}:6.*stagez"):
        jetpipe.run(bad)
    nofile = tmp_path / "nofile.yaml"
    nofile.write_text(yaml.read_text().replace("qg_tiny.h5", "qg_nothere.h5"))
    with pytest.raises(FileNotFoundError, match="qg_nothere.h5"):
        jetpipe.run(nofile)


def test_sql_returns_the_clis_rows_as_a_pyarrow_table(dataset, pipeline):
    q = (
        "SELECT label, count(*) AS n, avg(n_hits) AS mean_hits FROM jets "
        "GROUP BY label ORDER BY label"
    )
    t = jetpipe.sql(q, dataset)
    assert t.column_names == ["label", "n", "mean_hits"]
    # Independent: the jets table read with pyarrow alone.
    jets = pads.dataset(dataset / "jets", format="parquet").to_table()
    labels = jets["label"].to_numpy()
    pts = jets["n_hits"].to_numpy().astype(np.float64)
    want = [(int(y), int((labels == y).sum()), pts[labels == y].mean()) for y in np.unique(labels)]
    got = list(zip(*(t[c].to_pylist() for c in t.column_names)))
    assert [g[:2] for g in got] == [w[:2] for w in want]
    np.testing.assert_allclose([g[2] for g in got], [w[2] for w in want], rtol=1e-12)
    # The CLI's JSON output of the same query.
    r = cli(pipeline, "sql", "-d", str(dataset), "--format", "json", q)
    assert json.loads(r.stdout) == t.to_pylist()
    # Named datasets and the delta_r UDF.
    t2 = jetpipe.sql(
        "SELECT count(*) AS n FROM a_points WHERE res = 256 AND delta_r(eta[1], phi[1], 0.0, 0.0) < 0.5",
        {"a": dataset},
    )
    assert t2["n"][0].as_py() > 0
    with pytest.raises(ValueError, match="nope"):
        jetpipe.sql("SELECT nope FROM jets", dataset)
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        jetpipe.sql("SELECT 1", dataset / "missing")
