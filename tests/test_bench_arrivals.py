"""`emugen bench arrivals` at a small size: both sides run the same work, the conditions on
really reach the measured batches, and the figures print beside their baseline."""

from emugen.lab.arrivals import BATCHES, bench_arrivals, format_arrivals


def test_the_arrivals_bench_measures_conditions_on_beside_the_same_work_off():
    result = bench_arrivals(events=2_000, repeat=1, pipeline_repeat=1)
    made = result["generation"]
    assert len(made["off"]) == len(made["on"]) == BATCHES
    piped = result["pipeline"]
    # the second batch with the conditions on carries redelivered copies of the first's rows
    assert piped["off"]["records"] == 2_000 < piped["on"]["records"]
    text = format_arrivals(result)
    assert f"on/off {result['generation_ratio']:.2f}x" in text
    assert f"on/off {result['pipeline_ratio']:.2f}x" in text


def test_the_arrivals_bench_can_skip_the_pipeline():
    result = bench_arrivals(events=1_000, repeat=1, pipeline_repeat=0)
    assert "pipeline" not in result and "pipeline," not in format_arrivals(result)
