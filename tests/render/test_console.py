"""How durations and sizes read in the terminal."""

import pytest

from dlbench.render.console import hms


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, None),
        (59.6, "0:01:00"),
        (3 * 3600 + 62, "3:01:02"),
        (47 * 3600, "47:00:00"),  # under two days: still H:MM:SS
        (3.5 * 86_400, "3.5 days"),
        (17.6 * 365.25 * 86_400, "17.6 years"),
    ],
)
def test_durations_read_in_the_unit_a_person_would_use(seconds, shown):
    assert hms(seconds) == shown
