"""The worker's runtime: a fresh process's engines, the backoff, and the stage chain by name."""

from __future__ import annotations

from celery import Celery

from emugen.db.session import dispose_engines, engine_for
from emugen.fleet import worker
from emugen.fleet.worker import backoff, stage_chain


def test_a_pool_process_starts_without_its_parents_engines(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    parent = engine_for(url)
    with parent.connect():
        pass
    runtime = worker.setup_process(tmp_path / "emugen.yaml")
    child = engine_for(url)
    assert child is not parent and worker.runtime() is runtime
    assert parent.pool.checkedin() == 1  # forgotten, not closed: the parent still owns it
    dispose_engines(url)


def test_dispose_engines_closes_and_forgets_only_the_urls_asked_for(tmp_path):
    keep, drop = (f"sqlite:///{tmp_path / name}" for name in ("keep.db", "drop.db"))
    kept, dropped = engine_for(keep), engine_for(drop)
    with dropped.connect():
        pass
    assert dispose_engines(drop) == 1
    assert dropped.pool.checkedin() == 0
    assert engine_for(drop) is not dropped and engine_for(keep) is kept
    assert dispose_engines(lambda url: url in (keep, drop)) == 2


def test_the_backoff_doubles_and_stays_below_the_visibility_timeout():
    assert [backoff(n) for n in range(7)] == [1, 2, 4, 8, 16, 20, 20]


def test_the_stage_chain_sends_silver_then_gold_by_name_or_gold_alone():
    app = Celery("chain-test", broker="memory://")
    both = stage_chain(app, "events-000000001")
    assert [s.task for s in both.tasks] == ["emugen.to_silver", "emugen.to_gold"]
    assert all(s.args == ("events-000000001",) and s.immutable for s in both.tasks)
    alone = stage_chain(app, "events-000000001", first="gold")
    assert [s.task for s in alone.tasks] == ["emugen.to_gold"]
