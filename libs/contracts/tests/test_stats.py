"""The stats rollups' shared arithmetic: bucket layout, percentiles, implied statuses, ids."""

from __future__ import annotations

from datetime import date

import pytest

from postwire_contracts.stats import (
    LAST_BUCKET,
    OVERFLOW_BUCKET,
    bucket_key,
    bucket_of,
    histogram,
    merge,
    percentile,
    reached_with,
    rollup_id,
)
from postwire_contracts.status import Channel, Status


@pytest.mark.parametrize(("millis", "bucket"), [
    (-5, 0), (0, 0), (1, 0), (1.01, 1), (10, 10), (10.5, 11), (1000, 30), (3_600_000, 66),
    (3_981_071, 66), (4_000_000, OVERFLOW_BUCKET), (1e12, OVERFLOW_BUCKET)])
def test_buckets_are_log_spaced_from_1_ms_to_an_hour(millis: float, bucket: int) -> None:
    assert bucket_of(millis) == bucket


def test_every_sample_lies_within_its_bucket_bounds() -> None:
    for millis in (1.5, 7, 42, 250, 999, 12_345, 600_000):
        index = bucket_of(millis)
        assert 10 ** ((index - 1) / 10) < millis <= 10 ** (index / 10)


def test_percentiles_from_a_histogram() -> None:
    samples = [10] * 50 + [100] * 40 + [1000] * 10
    hist = merge([{bucket_of(s): 1} for s in samples])
    p50, p90, p99 = (percentile(hist, q) for q in (0.5, 0.9, 0.99))
    assert p50 is not None and p90 is not None and p99 is not None
    assert 10 / 1.26 < p50 <= 10
    assert 100 / 1.26 < p90 <= 100
    assert 1000 / 1.26 < p99 <= 1000
    assert percentile({}, 0.5) is None
    assert percentile({OVERFLOW_BUCKET: 3}, 0.5) == round(10 ** (LAST_BUCKET / 10), 1)


def test_stored_histograms_read_back() -> None:
    stored = {bucket_key(3): 2, bucket_key(40): 1, "junk": 5, "b": 1, "b7": -1}
    assert histogram(stored) == {3: 2, 40: 1}
    assert histogram(None) == {}
    assert merge([{3: 2}, {3: 1, 4: 1}]) == {3: 3, 4: 1}


def test_a_status_implies_the_ones_before_it_but_failure_implies_nothing() -> None:
    assert reached_with(Status.QUEUED) == {Status.QUEUED}
    assert reached_with(Status.DELIVERED) == {Status.QUEUED, Status.PROCESSING, Status.SENT,
                                              Status.DELIVERED}
    assert reached_with(Status.FAILED) == {Status.QUEUED, Status.FAILED}


def test_rollup_ids() -> None:
    assert rollup_id("ten_1", Channel.SMS, date(2026, 11, 21), True) == "ten_1:sms:2026-11-21:live"
    assert rollup_id("ten_1", "email", date(2026, 1, 2), False) == "ten_1:email:2026-01-02:test"
