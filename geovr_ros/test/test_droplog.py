"""DropLog throttles by what was checked, never by sender text, and caps what it shows."""
from geovr_ros.ros.droplog import DropLog, check_name, shown


class Lines:
    def __init__(self):
        self.lines = []

    def warning(self, text):
        self.lines.append(text)


def test_400_distinct_sender_strings_give_one_log_line():
    log = Lines()
    drops = DropLog(log, period=60.0)
    for i in range(400):
        encoding = f'{i}' + 'x' * 60000
        drops.drop('bad_encoding', f'unsupported image encoding {shown(encoding)}')
    assert len(log.lines) == 1
    assert drops.counts['bad_encoding'] == 400
    assert len(log.lines[0]) < 200 and "'0xxxx" in log.lines[0] and '(60001 chars)' in log.lines[0]


def test_each_kind_and_check_is_logged_once_then_counted():
    log = Lines()
    drops = DropLog(log, period=60.0)
    assert drops.drop('bad_camera_info', 'K must be finite, got [nan]', 'K must be finite')
    assert drops.drop('bad_camera_info', 'focal lengths must be positive, got fx=0',
                      'focal lengths must be positive')
    assert not drops.drop('bad_camera_info', 'K must be finite, got [inf]', 'K must be finite')
    assert len(log.lines) == 2 and drops.counts['bad_camera_info'] == 3


def test_a_long_message_is_cut_and_control_characters_are_escaped():
    log = Lines()
    DropLog(log, 0.0).drop('error', 'x' * 100000)
    assert len(log.lines[0]) < 500
    assert shown('a\nb\x1b[31m') == "'a\\nb\\x1b[31m'"


def test_check_name_stops_at_the_first_value():
    assert check_name('K must be finite, got [[nan, 0.0]]') == 'K must be finite'
    assert check_name('focal lengths must be positive, got fx=0.0') == \
        'focal lengths must be positive'
    assert check_name("principal point (1e9, 3) is more than") == 'principal point'


def test_reset_starts_counting_afresh():
    from geovr_ros.ros.droplog import DropLog

    class Lines(list):
        def warning(self, text):
            self.append(text)
    lines = Lines()
    log = DropLog(lines, period=60.0)
    log.drop('bad_image', 'first')
    log.drop('bad_image', 'second')
    assert log.counts['bad_image'] == 2 and len(lines) == 1
    log.reset()
    assert not log.counts
    log.drop('bad_image', 'after reset')
    assert log.counts['bad_image'] == 1 and len(lines) == 2  # the throttle was reset too
