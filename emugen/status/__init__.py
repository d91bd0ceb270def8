"""The one read model of the fleet's state: `emugen status` and the dashboard both read it.

`report.status` is the CLI's report and `health.snapshot` the dashboard's; both are built
from the same reads here (`report.batch_tally`, `report.control`, `report.layer_latencies`,
`batches`, `quality`), so the two views cannot disagree about what the store holds.

May import everything below it: vocabulary/errors/contract, files, settings, generate, db,
sinks, pipeline, export/grade/backfill and fleet. Never web, lab or cli.
"""
