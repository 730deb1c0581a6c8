"""The preview rate limit keeps its average rate under jitter, and a pause does not earn a burst."""
from nodegraph.ratelimit import RateLimit


def count_ready(limit: RateLimit, step: float, seconds: float) -> int:
    return sum(limit.ready(i * step) for i in range(int(seconds / step)))


def test_iterations_of_67_ms_get_the_full_10_hz_not_every_second_one():
    assert count_ready(RateLimit(10), 0.067, 10.0) in (99, 100, 101)  # "since the last" gave 75


def test_fast_calls_are_capped_and_slow_calls_all_pass():
    assert count_ready(RateLimit(10), 0.001, 5.0) in (50, 51)
    assert count_ready(RateLimit(10), 0.25, 5.0) == 20


def test_slack_passes_a_call_that_is_slightly_early_and_nothing_earlier():
    limit = RateLimit(10, slack=0.1)
    assert limit.ready(0.0) and limit.ready(0.0995) and not limit.ready(0.15)
    assert count_ready(RateLimit(10, slack=0.1), 0.001, 5.0) in (50, 51)  # the average holds


def test_a_pause_does_not_earn_a_burst_and_zero_means_no_limit():
    limit = RateLimit(10)
    assert limit.ready(0.0) and not limit.ready(0.05)
    assert limit.ready(5.0)  # after a long pause: one call passes...
    assert not limit.ready(5.01) and not limit.ready(5.05)  # ...then the rate holds again
    assert all(RateLimit(0).ready(t) for t in (0.0, 0.0, 1e-9))
