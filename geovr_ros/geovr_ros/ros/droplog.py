"""Logging dropped frames without letting a sender flood the log (pure Python, no rclpy).

Throttling is keyed by what the node checked (a kind, optionally one of the node's own
check names), never by text taken from a message: an attacker who varies an encoding
string or a frame_id still gets one log line per period. Text from a message is shown
through `shown`, which escapes and truncates it.
"""
from __future__ import annotations

import re
import threading
import time
from collections import Counter

SHOWN_CHARS = 80          # characters of sender-controlled text a log line shows
MESSAGE_CHARS = 400       # a logged reason is cut to this many characters


def shown(text: str, limit: int = SHOWN_CHARS) -> str:
    """repr() of sender-controlled `text` cut to `limit` characters (escaped, one line),
    with its full length when cut, e.g. 'yuv422' or 'aaaa...'... (60000 chars)."""
    text = str(text)
    if len(text) <= limit:
        return repr(text)
    return f'{text[:limit]!r}... ({len(text)} chars)'


def check_name(message: str) -> str:
    """The leading words of one of the node's own error messages, up to the first value
    (digit, quote, bracket or punctuation), e.g. 'K must be finite' for
    'K must be finite, got [...]': a finite key, for messages built by this project's
    validation code."""
    return re.match(r'[A-Za-z_ ]*', message).group(0).strip()[:60]


class DropLog:
    """Counts dropped frames by kind; logs a (kind, check) at once, then at most once a
    period, with the number of drops in between.

    Args:
        logger: anything with .warning(str) (an rclpy logger).
        period: seconds between two log lines of the same (kind, check).
    """

    def __init__(self, logger, period: float):
        self._logger = logger
        self._period = float(period)
        self._last: dict[tuple[str, str], float] = {}
        self._since: Counter = Counter()
        self.counts: Counter = Counter()
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forgets every count and throttle (a new configure starts counting afresh)."""
        with self._lock:
            self._last.clear()
            self._since.clear()
            self.counts.clear()

    def drop(self, kind: str, message: str, check: str = '') -> bool:
        """Counts a drop under `kind` (a fixed name chosen by the node); logs `message`
        unless (kind, check) was logged less than a period ago. `check` must be a fixed
        name from the node's code (e.g. `check_name` of its own error text), never text
        from the message that was dropped. Returns whether a line was logged."""
        now = time.monotonic()
        key = (kind, check)
        with self._lock:
            self.counts[kind] += 1
            self._since[key] += 1
            last = self._last.get(key)
            if last is not None and now - last < self._period:
                return False
            self._last[key] = now
            repeats = self._since[key]
            self._since[key] = 0
        if len(message) > MESSAGE_CHARS:
            message = message[:MESSAGE_CHARS] + f'... ({len(message)} chars)'
        more = f' ({repeats} frames since the last report)' if last is not None else ''
        self._logger.warning(f'dropping frame: {message}{more}')
        return True
