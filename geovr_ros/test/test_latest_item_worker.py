"""The perception thread's queue: newest item wins, errors do not kill it, stop joins."""
import threading

from geovr_ros.ros.worker import LatestItemWorker


def blocked_worker():
    """A started worker whose handler records each item, then blocks until `release`."""
    release, started, handled = threading.Event(), threading.Event(), []

    def slow(item):
        handled.append(item)
        started.set()
        release.wait(5.0)

    worker = LatestItemWorker(slow, lambda error: None)
    worker.start()
    return worker, started, release, handled


def test_items_are_handled_in_order_when_the_worker_keeps_up():
    handled, errors = [], []
    worker = LatestItemWorker(handled.append, errors.append)
    worker.start()
    for i in range(5):
        worker.submit(i)
        assert worker.wait_idle(5.0)
    assert worker.stop()
    assert handled == [0, 1, 2, 3, 4] and not errors and worker.replaced == 0


def test_a_newer_item_replaces_the_waiting_one_while_the_worker_is_busy():
    worker, started, release, handled = blocked_worker()
    worker.submit('first')
    assert started.wait(5.0)
    assert worker.submit('stale') is False
    assert worker.submit('newest') is True  # 'stale' never started: replaced
    release.set()
    assert worker.wait_idle(5.0)
    worker.stop()
    assert handled == ['first', 'newest'] and worker.replaced == 1


def test_an_exception_is_reported_and_the_worker_goes_on():
    errors, handled = [], []

    def handle(item):
        if item == 'bad':
            raise ValueError('bad frame')
        handled.append(item)

    worker = LatestItemWorker(handle, errors.append)
    worker.start()
    for item in ('bad', 'good'):
        worker.submit(item)
        assert worker.wait_idle(5.0)
    worker.stop()
    assert handled == ['good']
    assert len(errors) == 1 and isinstance(errors[0], ValueError)


def test_stop_drops_the_pending_item_and_the_worker_restarts():
    worker, started, release, handled = blocked_worker()
    worker.submit('running')
    assert started.wait(5.0)
    worker.submit('pending')
    threading.Timer(0.1, release.set).start()
    assert worker.stop(5.0)
    assert not worker.running and handled == ['running']
    worker.start()  # a lifecycle node re-activated
    worker.submit('again')
    assert worker.wait_idle(5.0)
    worker.stop()
    assert handled == ['running', 'again']
