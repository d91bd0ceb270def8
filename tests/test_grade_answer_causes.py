"""Every wrong gold cell explained by its cause and the records behind it, on hand-made
landings (30 s windows, event times in seconds since the epoch)."""

from __future__ import annotations

from emugen.grade.answer.run import GoldJob, run_gold
from emugen.grade.inputs import Source
from tests.answer_helpers import Landing, causes, cell_of, grade, iso


def test_a_redelivered_copy_counted_twice_is_named_by_its_record_id(tmp_path):
    landing = Landing().files([100, 101], [130])
    original = landing.rows[0]
    landing.event(2, 100, event_id=original["natural_id"], copy_of=(1, 0))
    result = grade(tmp_path, landing, [(90, "c1", 3), (120, "c1", 1)])
    assert result["wrong"] == 2  # events and start_driving
    assert causes(cell_of(result, 90)) == {
        "redelivered_counted": [("events-000000002", 1, original["natural_id"])]
    }
    assert result["by_cause"]["redelivered_counted"] == 2


def test_late_records_a_consumer_dropped_are_named_when_the_policy_counts_them(tmp_path):
    landing = Landing().files([100], [130, 140], [95, 131])
    landing.late(3, 0)
    result = grade(tmp_path, landing, [(90, "c1", 1), (120, "c1", 3)])
    assert causes(cell_of(result, 90)) == {"late_dropped": [("events-000000003", 0, "e3-0")]}


def test_an_escaped_defect_counted_is_named(tmp_path):
    landing = Landing().files([100, 101])
    landing.event(1, 102, driver="d9", defect="invalid_enum")
    result = grade(tmp_path, landing, [(90, "c1", 3, 3, 0, 0, 2)])
    assert causes(cell_of(result, 90)) == {"defect_counted": [("events-000000001", 2, "e1-2")]}
    # the defect's driver is a driver too many
    assert causes(cell_of(result, 90, "active_drivers")) == {
        "defect_counted": [("events-000000001", 2, "e1-2")]
    }


def test_a_delayed_batch_never_counted_is_named(tmp_path):
    landing = Landing().files([100], [101, 102], [130])
    landing.delay(2, until=3)
    result = grade(tmp_path, landing, [(90, "c1", 1), (120, "c1", 1)])
    found = causes(cell_of(result, 90))
    assert list(found) == ["delayed_missed"] and len(found["delayed_missed"]) == 2


def test_a_row_one_window_or_whole_hours_away_is_window_shifted(tmp_path):
    landing = Landing().files([100, 101], [3700])
    hour_off = grade(tmp_path, landing, [(90 + 3600, "c1", 2), (3690 + 3600, "c1", 1)])
    assert hour_off["by_cause"]["window_shifted"] >= 1
    shifted = next(c for c in hour_off["wrong_cells"] if c["window_start_ms"] == 3_690_000)
    assert shifted["causes"][0]["cause"] == "window_shifted"
    assert shifted["causes"][0]["shift_ms"] == -3_600_000


def test_a_row_fitting_a_window_back_and_a_window_ahead_is_named_shifted_back_every_time(tmp_path):
    # one event at 65 s (window 60) and one at 125 s (window 120): the consumer's lone row at
    # 90 equals either neighbour, and the report must not depend on which one DuckDB finds first
    landing = Landing().files([65], [125])
    shifts = set()
    for run in range(5):
        folder = tmp_path / str(run)
        folder.mkdir()
        result = grade(folder, landing, [(90, "c1", 1)])
        cell = cell_of(result, 90)
        assert cell["causes"][0]["cause"] == "window_shifted"
        shifts.add(cell["causes"][0]["shift_ms"])
    assert shifts == {-30_000}


def test_gold_for_a_window_never_generated_is_no_such_window(tmp_path):
    landing = Landing().files([100, 101])
    result = grade(tmp_path, landing, [(90, "c1", 2), (900, "c1", 4)])
    assert [c["cause"] for c in cell_of(result, 900)["causes"]] == ["no_such_window"]


def test_a_difference_no_cause_explains_is_unexplained_with_the_cells_records(tmp_path):
    landing = Landing().files([100, 101, 102])
    result = grade(tmp_path, landing, [(90, "c1", 1)])
    cell = cell_of(result, 90)
    assert [c["cause"] for c in cell["causes"]] == ["unexplained"]
    assert cell["causes"][0]["count"] == 3 and len(cell["causes"][0]["examples"]) == 3


def test_windows_after_the_last_one_the_consumer_wrote_are_pending_not_wrong(tmp_path):
    landing = Landing().files([100], [130], [160])
    result = grade(tmp_path, landing, [(90, "c1", 1)])
    # 2 windows x their 3 metrics that are not 0 (events, start_driving, active_drivers)
    assert result["wrong"] == 0 and result["pending"] == 6


def test_a_region_gold_is_graded_from_the_companies_and_their_events(tmp_path):
    landing = Landing().files([100, 101])
    landing.company("c1", "eu", 95)
    truth, arrivals = landing.write(tmp_path)
    (tmp_path / "region.jsonl").write_text(
        f'{{"window_start": "{iso(90)}", "region": "eu", "companies_onboarded": 1, '
        '"events": 2, "deliveries": 0}\n'
    )
    result = run_gold(
        GoldJob(
            Source("gold", str(tmp_path / "region.jsonl")),
            width_ms=30_000,
            truth_path=truth,
            arrivals_path=arrivals,
        )
    )
    assert result["table"] == "region" and result["wrong"] == 0 and result["cells"] == 3


def test_with_the_consumers_silver_a_clean_record_it_rejected_is_named_and_split(tmp_path):
    landing = Landing().files([100, 101, 102])
    truth, arrivals = landing.write(tmp_path)
    kept = tmp_path / "kept.jsonl"
    kept.write_text("".join(f'{{"batch_id": "events-000000001", "row_no": {n}}}\n' for n in (0, 2)))
    gold = tmp_path / "g.jsonl"
    gold.write_text(
        f'{{"window_start": "{iso(90)}", "company_id": "c1", "events": 3, '
        '"start_driving": 3, "stopped_driving": 0, "delivered": 0, '
        '"active_drivers": 1}\n'
    )
    result = run_gold(
        GoldJob(
            Source("gold", str(tmp_path / "g.jsonl")),
            width_ms=30_000,
            truth_path=truth,
            arrivals_path=arrivals,
            kept=Source("kept", str(kept)),
        )
    )
    assert result["wrong"] == 0  # the gold is right although its silver lost a record
    gold.write_text(
        gold.read_text().replace(
            '"events": 3, "start_driving": 3', '"events": 2, "start_driving": 2'
        )
    )
    result = run_gold(
        GoldJob(
            Source("gold", str(tmp_path / "g.jsonl")),
            width_ms=30_000,
            truth_path=truth,
            arrivals_path=arrivals,
            kept=Source("kept", str(kept)),
        )
    )
    cell = cell_of(result, 90)
    assert causes(cell) == {"clean_rejected": [("events-000000001", 1, "e1-1")]}
    assert (cell["filter"], cell["aggregation"]) == (-1, 0)
