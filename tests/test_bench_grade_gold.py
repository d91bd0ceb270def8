"""`emugen bench grade-gold` at a small size: it runs, the naive consumer's gold is wrong, and
every wrong cell is explained (by its redelivered copies); no timing is asserted."""

from __future__ import annotations

from emugen.lab.grade_gold import bench_grade_gold, format_grade_gold


def test_the_answer_benchmark_explains_every_wrong_cell_of_the_naive_consumer():
    result = bench_grade_gold(records=20_000, repeat=1)
    naive, correct = result["naive"], result["correct"]
    assert naive["wrong"] > 0 and naive["cells"] > naive["wrong"]
    assert set(naive["by_cause"]) == {"redelivered_counted"}
    assert correct["wrong"] == 0 and correct["cells"] > 0
    assert naive["join_rows"] > 0 and naive["ratio"] > 0
    assert "hand-written GROUP BY + FULL OUTER JOIN" in format_grade_gold(result)
