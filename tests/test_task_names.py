"""Task names are the wire contract: a message queued by an older fleet still finds its task.

A queued message names its task by a string (protocol 2's `task` header). The names below are
the ones every emugen release so far has put on the wire; they are written out here, not
imported, so that moving or renaming a module cannot change them unnoticed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fleet_helpers import write_config

REPO = Path(__file__).resolve().parent.parent
# name on the wire -> the queue a running fleet routes it to
WIRE = {
    "emugen.generate_batch": "generate",
    "emugen.backfill_tick": "generate",
    "emugen.to_silver": "pipeline",
    "emugen.to_gold": "pipeline",
    "emugen.land_batch": "pipeline",
    "emugen.reap": "pipeline",
    "emugen.prune": "pipeline",
}
PROBE = """
import json, sys
from emugen.celery import app
app.loader.import_default_modules()
found = {}
for name in sys.argv[1:]:
    # the message an older fleet queued: only its `task` header names the code to run
    queued = app.amqp.as_task_v2("id-1", name, args=("events-000000001",))
    task = app.tasks[queued.headers["task"]]
    route = app.amqp.router.route({}, name)
    found[name] = {"module": task.__module__, "queue": route["queue"].name,
                   "registered": task.name}
print(json.dumps(found))
"""


def _resolve(tmp_path: Path, names: list[str]) -> dict[str, dict[str, str]]:
    """How the real Celery app (`celery -A emugen`), started in a fresh process, resolves
    each task name: the module of the task it runs and the queue it routes to."""
    config = write_config(tmp_path / "emugen.yaml", f"sqlite:///{tmp_path / 'store.db'}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMUGEN_")}
    env["EMUGEN_CONFIG"] = str(config)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *names],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_task_name_a_queued_message_carries_resolves_to_the_fleets_task(tmp_path):
    found = _resolve(tmp_path, sorted(WIRE))
    assert {name: entry["registered"] for name, entry in found.items()} == {n: n for n in WIRE}
    assert {entry["module"] for entry in found.values()} == {"emugen.fleet.tasks"}
    assert {name: entry["queue"] for name, entry in found.items()} == WIRE


def test_the_names_module_holds_exactly_the_wire_names_and_their_queues():
    from emugen.fleet import names

    assert names.ROUTES == WIRE
    assert names.QUEUES == ("generate", "pipeline")
    assert set(names.STAGE_TASKS.values()) == {"emugen.to_silver", "emugen.to_gold"}
