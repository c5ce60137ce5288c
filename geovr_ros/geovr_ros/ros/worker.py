"""A processing thread that always works on the newest submitted item.

Camera callbacks hand frames to it and return at once, so the ROS executor stays free for
camera_info, services and timers while a frame is in the model, and no executor thread
polls while the model runs (rclpy's MultiThreadedExecutor busy-waits on a callback group
that is busy, which on a small CPU takes a core away from inference). An item submitted
while another is pending replaces it: like a keep-last-1 queue, a slow model skips stale
frames instead of falling behind.
"""
from __future__ import annotations

import threading
from typing import Callable, Generic, TypeVar

Item = TypeVar('Item')


class LatestItemWorker(Generic[Item]):
    """Runs `handle(item)` on a daemon thread for the newest item submitted.

    Args:
        handle: called with each item, one at a time, on the worker thread.
        on_error: called with the exception when `handle` raises; the worker goes on.
        name: the thread's name (shows in debuggers and py-spy).
    """

    def __init__(self, handle: Callable[[Item], None],
                 on_error: Callable[[BaseException], None], name: str = 'latest-item-worker'):
        self._handle = handle
        self._on_error = on_error
        self._name = name
        self._cond = threading.Condition()
        self._pending: list[Item] = []  # at most one
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.replaced = 0  # items dropped because a newer one arrived before they started

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Starts the thread (no-op when running)."""
        with self._cond:
            if self.running:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread.start()

    def submit(self, item: Item) -> bool:
        """Queues `item` for the worker; True when it replaced an item not yet started."""
        with self._cond:
            replaced = bool(self._pending)
            self._pending[:] = [item]
            if replaced:
                self.replaced += 1
            self._cond.notify()
        return replaced

    def stop(self, timeout: float | None = 10.0) -> bool:
        """Drops the pending item, lets the current one finish and joins the thread.
        False if it did not end within `timeout` seconds."""
        with self._cond:
            self._stopping = True
            self._pending.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def wait_idle(self, timeout: float) -> bool:
        """Blocks until nothing is pending or running; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stopping)
                if self._stopping:
                    self._busy = False
                    self._cond.notify_all()
                    return
                item = self._pending.pop()
                self._busy = True
            try:
                self._handle(item)
            except Exception as error:  # the worker must outlive any bad frame
                self._on_error(error)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
