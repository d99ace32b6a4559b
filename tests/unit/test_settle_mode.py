"""Which way `claims settle` goes when the command names none (bulk/mode.py)."""

from __future__ import annotations

from bulk.mode import SettleMode, choose_mode, parallel_file_bytes_min

LARGE = parallel_file_bytes_min


def test_a_large_named_file_is_settled_by_a_worker_a_core_grouped_in_batches_of_a_thousand() -> None:
    assert choose_mode(LARGE, cores=2) == SettleMode(2, True, 1_250)
    assert choose_mode(LARGE * 100, cores=4) == SettleMode(4, True, 1_250)


def test_standard_input_and_a_small_file_stream_through_one_process() -> None:
    assert choose_mode(None, cores=2) == SettleMode(1, False, 500)
    assert choose_mode(LARGE - 1, cores=2) == SettleMode(1, False, 500)
    assert choose_mode(None, cores=2).streaming


def test_any_option_given_is_taken_as_asked_and_the_rest_as_before() -> None:
    assert choose_mode(LARGE, workers=1, cores=2) == SettleMode(1, False, 500)
    assert choose_mode(LARGE, grouped=False, cores=2) == SettleMode(1, False, 500)
    assert choose_mode(LARGE, grouped=True, cores=2) == SettleMode(1, True, 500)
    assert choose_mode(LARGE, workers=2, cores=2) == SettleMode(2, False, 500)
    assert choose_mode(LARGE, batch_size=300, cores=2) == SettleMode(2, True, 300)
    assert choose_mode(None, batch_size=7) == SettleMode(1, False, 7)
