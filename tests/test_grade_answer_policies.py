"""The expected gold of each declared policy, on small cases computed by hand (docs:
explanation/grading-the-answer.md). Windows are 30 s; event times are seconds since the epoch.

The landing is the one Spark's watermark was measured on: files in release order
f0 [100], f1 [125], f2 [112, 117], f3 [140], f4 [105, 119, 121], f5 [108, 150], f6 [200]."""

from __future__ import annotations

import pytest

from emugen.grade.answer.policy import Tolerance
from tests.answer_helpers import Landing, causes, cell_of, grade

SPARK = ([100], [125], [112, 117], [140], [105, 119, 121], [108, 150], [200])


def spark_landing() -> Landing:
    return Landing().files(*SPARK)


def test_exact_counts_every_valid_record_in_its_window_however_late(tmp_path):
    result = grade(
        tmp_path,
        spark_landing(),
        [(90, "c1", 6), (120, "c1", 3), (150, "c1", 1), (180, "c1", 0), (200 // 30 * 30, "c1", 1)],
    )
    assert result["wrong"] == 0 and result["cells"] > 0, result["wrong_cells"]


def test_watermark_per_batch_counts_what_spark_counted_and_names_the_dropped_row(tmp_path):
    # Spark emitted [90, 120) with 5 rows: 108 (file 5) was dropped, 105 and 119 (file 4) not
    result = grade(tmp_path, spark_landing(), [(90, "c1", 5)], "watermark=10s", "per-batch")
    assert result["wrong"] == 0, result["wrong_cells"]
    # [120, 150) onwards: the last batch's watermark (150 - 10) has not passed their end
    assert result["pending"] > 0
    exact_gold = grade(tmp_path, spark_landing(), [(90, "c1", 6)], "watermark=10s", "per-batch")
    cell = cell_of(exact_gold, 90)
    assert (cell["expected"], cell["got"]) == (5, 6)
    assert [c["cause"] for c in cell["causes"]] == ["late_counted"]
    assert cell["causes"][0]["examples"][0]["batch_id"] == "events-000000006"


def test_watermark_without_a_per_batch_trigger_is_a_band_from_the_eager_engine_to_exact(tmp_path):
    # the eager engine filters file k with max(files < k) - 10 s: 105, 119 (140 - 10 >= 120)
    # and 108 go, 112 and 117 stay (125 - 10 < 120): lo 3, hi 6
    for got in (3, 5, 6):
        assert grade(tmp_path, spark_landing(), [(90, "c1", got)], "watermark=10s")["wrong"] == 0
    result = grade(tmp_path, spark_landing(), [(90, "c1", 2)], "watermark=10s")
    cell = cell_of(result, 90)
    assert (cell["expected_lo"], cell["expected_hi"], cell["got"]) == (3, 6, 2)


@pytest.mark.parametrize(("lookback", "expected"), [(0, 1), (1, 6)])
def test_lookback_freezes_windows_older_than_n_before_the_newest_one_already_built(
    tmp_path, lookback, expected
):
    # lookback 0: file 2's run starts at window 120 (the newest built): 112, 117 land frozen
    result = grade(tmp_path, spark_landing(), [(90, "c1", expected)], f"lookback={lookback}")
    assert result["wrong"] == 0, result["wrong_cells"]
    assert result["cells"] >= 1


def test_records_a_policy_loses_are_named_apart_from_the_pipelines_own_bugs(tmp_path):
    # a consumer that counted everything, graded under lookback 0: the extra are late_counted
    result = grade(tmp_path, spark_landing(), [(90, "c1", 6)], "lookback=0")
    cell = cell_of(result, 90)
    assert cell["expected"] == 1 and cell["causes"][0]["cause"] == "late_counted"
    assert cell["causes"][0]["count"] == 5
    row = next(c for c in result["conservation"] if c["window_start_ms"] == 90_000)
    assert (row["landed"], row["counted"], row["dropped_late"]) == (6, 1, 5) and row["balanced"]


def test_a_delayed_batch_counts_in_the_order_it_was_released(tmp_path):
    # file 2 ([112, 117]) waits for file 4 ([105, 119, 121]): released after it, at k = 4,
    # when the previous batch's watermark is max(100, 125, 140) - 10 = 130 >= 120: dropped
    landing = spark_landing()
    landing.delay(3, until=5)
    result = grade(tmp_path, landing, [(90, "c1", 5)], "watermark=10s", "per-batch")
    cell = cell_of(result, 90)
    assert cell["expected"] == 3, cell  # 100, 105, 119
    assert {c["cause"] for c in cell["causes"]} == {"late_counted"}


def test_a_tolerance_accepts_a_difference_within_it(tmp_path):
    # one extra event: its events and start_driving cells are both one over
    assert grade(tmp_path, spark_landing(), [(90, "c1", 7)])["wrong"] == 2
    assert (
        grade(tmp_path, spark_landing(), [(90, "c1", 7)], tolerance=Tolerance(absolute=1))["wrong"]
        == 0
    )


def test_a_window_shorter_than_the_golds_own_is_refused_naming_the_spacing(tmp_path):
    from emugen.errors import GradeInputError

    landing = Landing().files([100], [130], [160], [190])
    # an hourly-looking consumer graded with 30 s windows: 60 s apart, data at 120 and 180
    with pytest.raises(GradeInputError, match="60 s apart"):
        grade(tmp_path, landing, [(90, "c1", 2), (150, "c1", 2)])


def copy_before_its_original() -> Landing:
    """X (112 s) lands in file 2, delayed until file 5; its copy lands in file 3. Release
    order: f1 [100], f3 [125, X'], f4 [160], f5 [170], f2 [X]."""
    landing = Landing()
    landing.event(1, 100)
    original = landing.event(2, 112, event_id="X")
    landing.event(3, 125)
    landing.event(3, 112, event_id=original["natural_id"], copy_of=(2, 0))
    landing.event(4, 160)
    landing.event(5, 170)
    landing.delay(2, until=5)
    return landing


@pytest.mark.parametrize(
    ("policy", "trigger"), [("lookback=0", "any"), ("watermark=10s", "per-batch")]
)
def test_a_copy_released_before_its_delayed_original_is_the_one_counted(tmp_path, policy, trigger):
    # X' arrives at k = 1 and counts: lookback 0 recomputes from window 90 (floor(100 / 30)),
    # the watermark has no earlier-but-one file yet. X arrives last (k = 4): lookback 0 starts
    # at window 150 (floor(170 / 30)), the watermark at 160 - 10 >= 120: it would be dropped
    # anyway, and it is the duplicate. [90, 120) holds 100 and X': 2
    result = grade(tmp_path, copy_before_its_original(), [(90, "c1", 2)], policy, trigger)
    assert result["wrong"] == 0, result["wrong_cells"]
    # a consumer that kept both: the extra record is the original, the later arrival
    both = cell_of(
        grade(tmp_path, copy_before_its_original(), [(90, "c1", 3)], policy, trigger), 90
    )
    assert (both["expected"], both["got"]) == (2, 3)
    assert causes(both) == {"redelivered_counted": [("events-000000002", 0, "X")]}


def test_exact_names_the_ledgers_copy_as_the_duplicate_whichever_arrived_first(tmp_path):
    both = cell_of(grade(tmp_path, copy_before_its_original(), [(90, "c1", 3)]), 90)
    assert (both["expected"], both["got"]) == (2, 3)
    assert causes(both) == {"redelivered_counted": [("events-000000003", 1, "X")]}


def test_repeated_ids_are_found_alike_with_the_truths_occurrence_numbers_or_without(tmp_path):
    # an exported truth numbers each id's records; the copy is found from those numbers, and
    # from the ids themselves when a truth file has none
    landing = copy_before_its_original()
    seen: dict[str, int] = {}
    numbered = []
    for row in sorted(landing.rows, key=lambda r: (r["batch_id"], r["row_no"])):
        seen[row["natural_id"]] = seen.get(row["natural_id"], 0) + 1
        numbered.append({**row, "occurrence": seen[row["natural_id"]]})
    results = []
    for name, rows in (("plain", landing.rows), ("numbered", numbered)):
        folder = tmp_path / name
        folder.mkdir()
        result = grade(folder, Landing(rows, landing.ledger), [(90, "c1", 3)])
        results.append({k: v for k, v in result.items() if k != "source"})
    assert results[0] == results[1]
    assert causes(cell_of(results[1], 90)) == {
        "redelivered_counted": [("events-000000003", 1, "X")]
    }
