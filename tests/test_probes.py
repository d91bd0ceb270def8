"""The benchmark notes' probes, run small: each prints the figures the notes quote."""

from __future__ import annotations

from click.testing import CliRunner

from emugen.cli import main
from emugen.db.session import engine_for, init_db
from emugen.lab.probes import stage_log
from emugen.pipeline.runner import run_pipeline
from tests.conftest import make_settings


def test_the_stage_log_appends_each_streams_stage_means_from_a_read_only_store(tmp_path):
    db = tmp_path / "soak.db"
    engine = engine_for(f"sqlite:///{db}")
    init_db(engine)
    run_pipeline(engine, make_settings(), 2)
    out = tmp_path / "stages.log"
    stage_log(str(db), out, seconds=0.3, every_s=0.2)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert "companies n=2 gen" in lines[0] and "events n=2 gen" in lines[0]
    assert " gold " in lines[0] and " mark " in lines[0]


def test_the_stage_cpu_probe_prints_each_stages_seconds_and_a_content_hash():
    done = CliRunner().invoke(main, ["bench", "probe", "stage-cpu", "500"])
    assert done.exit_code == 0, done.output
    for part in ("gen+bronze wall", "silver wall", "gold wall", "hash ", "peak RSS"):
        assert part in done.output
