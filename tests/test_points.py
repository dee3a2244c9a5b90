"""Tests for the numbered point store (asyncopt_mpi.runtime.points.PointStore): versions, references, buffer pool."""

from __future__ import annotations

import numpy as np
import pytest

from asyncopt_mpi.runtime.points import PointStore

DIM = 5


def filled(store: PointStore, value: float) -> np.ndarray:
    x = store.new_buffer()
    x[:] = value
    return x


def test_initial_point_is_version_zero_and_a_private_copy():
    x0 = np.arange(DIM, dtype=float)
    store = PointStore(x0)
    assert store.current == 0
    assert store.dim == DIM
    assert len(store) == 1
    np.testing.assert_array_equal(store.get(0), np.arange(DIM))
    x0[:] = -1.0  # the caller's array is not the stored one
    np.testing.assert_array_equal(store.get(0), np.arange(DIM))
    assert not store.get(0).flags.writeable


def test_initial_point_from_a_list_of_ints_is_float():
    store = PointStore([1, 2, 3])
    assert store.get(0).dtype == np.float64
    assert store.dim == 3


def test_publish_increments_the_version():
    store = PointStore(np.zeros(DIM))
    versions = [store.publish(filled(store, k)) for k in range(1, 5)]
    assert versions == [1, 2, 3, 4]
    assert store.current == 4
    np.testing.assert_array_equal(store.get(4), np.full(DIM, 4.0))


def test_published_array_becomes_read_only():
    store = PointStore(np.zeros(DIM))
    x = filled(store, 1.0)
    assert x.flags.writeable
    version = store.publish(x)
    assert not x.flags.writeable
    with pytest.raises(ValueError):
        x[0] = 2.0
    with pytest.raises(ValueError):
        store.get(version)[0] = 2.0
    np.testing.assert_array_equal(store.get(version), np.ones(DIM))


def test_the_previous_version_stays_until_the_next_publish():
    store = PointStore(np.zeros(DIM))
    store.publish(filled(store, 1.0))
    assert len(store) == 2 and store.previous == 0  # kept for jobs at a pair of points
    np.testing.assert_array_equal(store.get(0), np.zeros(DIM))
    store.publish(filled(store, 2.0))
    assert len(store) == 2 and store.previous == 1
    with pytest.raises(KeyError):
        store.get(0)


def test_acquired_version_stays_readable_until_its_last_release():
    store = PointStore(np.zeros(DIM))
    v1 = store.publish(filled(store, 1.0))
    store.acquire(v1)
    store.acquire(v1)
    v2 = store.publish(filled(store, 2.0))
    v3 = store.publish(filled(store, 3.0))  # v1 is neither current nor previous any more
    assert (v2, v3) == (2, 3)
    np.testing.assert_array_equal(store.get(v1), np.ones(DIM))
    store.release(v1)
    np.testing.assert_array_equal(store.get(v1), np.ones(DIM))
    store.release(v1)
    with pytest.raises(KeyError):
        store.get(v1)
    np.testing.assert_array_equal(store.get(v2), np.full(DIM, 2.0))  # the previous point
    np.testing.assert_array_equal(store.get(v3), np.full(DIM, 3.0))


def test_len_tracks_live_versions():
    store = PointStore(np.zeros(DIM))
    assert len(store) == 1
    store.acquire(0)
    store.publish(filled(store, 1.0))
    assert len(store) == 2  # v0 previous (and acquired), v1 current
    store.publish(filled(store, 2.0))
    assert len(store) == 3  # v0 still acquired, v1 previous, v2 current
    store.acquire(1)
    store.publish(filled(store, 3.0))
    assert len(store) == 4  # v0 and v1 acquired, v2 previous, v3 current
    store.release(0)
    assert len(store) == 3
    store.acquire(1)
    store.release(1)
    assert len(store) == 3  # one acquire of v1 is still outstanding
    store.release(1)
    assert len(store) == 2
    assert store.current == 3


def test_current_point_can_be_acquired_and_released_without_dropping_it():
    store = PointStore(np.zeros(DIM))
    v1 = store.publish(filled(store, 1.0))
    store.acquire(v1)
    store.release(v1)
    np.testing.assert_array_equal(store.get(v1), np.ones(DIM))
    assert len(store) == 2  # v1 current, v0 previous


def test_acquire_or_release_of_a_dead_version_raises():
    store = PointStore(np.zeros(DIM))
    store.publish(filled(store, 1.0))
    store.publish(filled(store, 2.0))
    with pytest.raises(KeyError):
        store.acquire(0)
    with pytest.raises(KeyError):
        store.release(0)
    with pytest.raises(KeyError):
        store.get(7)


def test_released_buffer_is_reused_by_new_buffer():
    store = PointStore(np.zeros(DIM))
    x1 = filled(store, 1.0)
    store.publish(x1)
    store.publish(filled(store, 2.0))
    store.publish(filled(store, 3.0))  # releases v1: its buffer goes to the pool
    reused = store.new_buffer()
    assert np.shares_memory(reused, x1)
    assert reused.flags.writeable
    assert reused.shape == (DIM,) and reused.dtype == np.float64


def test_initial_point_buffer_is_reused():
    store = PointStore(np.zeros(DIM))
    x0 = store.get(0)
    store.publish(filled(store, 1.0))
    store.publish(filled(store, 2.0))  # v0 is no longer the previous point
    assert np.shares_memory(store.new_buffer(), x0)


def test_new_buffer_never_aliases_a_live_version():
    store = PointStore(np.zeros(DIM))
    held = []
    for k in range(1, 30):
        x = filled(store, float(k))
        for version in held + [v for v in (store.current, store.previous) if v is not None]:
            assert not np.shares_memory(x, store.get(version))
        version = store.publish(x)
        if k % 3 == 0:
            store.acquire(version)
            held.append(version)
        if k % 5 == 0 and held:
            store.release(held.pop(0))
    for version in held:
        np.testing.assert_array_equal(store.get(version), np.full(DIM, float(version)))


def test_new_buffers_are_distinct_when_the_pool_is_empty():
    store = PointStore(np.zeros(DIM))
    a = store.new_buffer()
    b = store.new_buffer()
    assert not np.shares_memory(a, b)
    assert a.shape == (DIM,) and a.flags.writeable


@pytest.mark.parametrize("shape", [(DIM + 1,), (DIM - 1,), (DIM, 1), (1, DIM), ()])
def test_publishing_a_wrong_shape_raises(shape):
    store = PointStore(np.zeros(DIM))
    with pytest.raises(ValueError) as info:
        store.publish(np.zeros(shape))
    assert str(DIM) in str(info.value)
    assert store.current == 0
    assert len(store) == 1
    np.testing.assert_array_equal(store.get(0), np.zeros(DIM))


def test_step_alone_updates_in_place_unless_the_point_is_referenced():
    store = PointStore(np.arange(DIM, dtype=float))
    store.publish(filled(store, 1.0))  # version 1; version 0 is now the previous point
    direction = np.arange(DIM, dtype=float)
    buffer = store.get(1)
    assert store.step_alone(direction, 0.25) == 2
    point = store.get(2)
    assert np.shares_memory(point, buffer) and not point.flags.writeable  # the same memory, read-only
    assert len(store) == 1 and store.previous is None  # the previous point was let go
    assert store.step_alone(direction, 0.25) == 3 and store.get(3) is point  # later steps keep the view
    np.testing.assert_array_equal(point, 1.0 - 0.5 * direction)
    store.acquire(3)  # a point still referenced (a pin, a send) keeps its numbers: the next version gets a new buffer
    assert store.step_alone(direction, 1.0) == 4
    assert store.get(4) is not point and not np.shares_memory(store.get(4), point)
    np.testing.assert_array_equal(store.get(3), 1.0 - 0.5 * direction)
    np.testing.assert_array_equal(store.get(4), 1.0 - 1.5 * direction)


def test_step_alone_from_a_strided_point_gives_the_right_numbers():
    store = PointStore(np.zeros(DIM))
    store.publish(np.arange(2.0 * DIM)[::2])  # a writable strided view becomes the current point
    direction = np.ones(DIM)
    store.step_alone(direction, 1.0)
    store.step_alone(direction, 1.0)  # in place from here on
    np.testing.assert_array_equal(store.get(store.current), np.arange(2.0 * DIM)[::2] - 2.0)
