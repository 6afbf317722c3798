"""ReplayBuffer (rust/core/src/replay.rs) against a plain numpy ring reference."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlagents_fast import _native
from mlagents_fast.exceptions import CorruptFileError, InvalidArgumentError, StorageIOError
from mlagents_fast.trainers.replay_buffer import FieldSpec, ReplayBatch, ReplayBuffer

SPECS = {
    "obs_0": FieldSpec("float32", (3,), has_next=True),
    "obs_1": FieldSpec("uint8", (2, 2), has_next=True),
    "continuous_action": FieldSpec("float32", (2,)),
    "discrete_action": FieldSpec("int32", (1,)),
    "environment_rewards": FieldSpec("float64"),
}


class NumpyRing:
    """Reference: a Python list of per-step records, trimmed to the newest ``capacity``."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.steps: list[dict] = []

    def push(self, fields, next_fields, terminated):
        steps = len(next(iter(fields.values())))
        for t in range(steps):
            record = {name: np.array(values[t]) for name, values in fields.items()}
            last = t == steps - 1
            for name, spec in SPECS.items():
                if spec.has_next:
                    source = next_fields[name] if last else fields[name][t + 1]
                    record["next_" + name] = np.array(source).reshape(spec.shape)
            record["done"] = last and terminated
            self.steps.append(record)
        del self.steps[: max(0, len(self.steps) - self.capacity)]

    def truncate(self, max_length):
        del self.steps[: max(0, len(self.steps) - max_length)]


def random_trajectory(rng, steps, base):
    fields = {
        "obs_0": (base + np.arange(steps * 3, dtype=np.float32)).reshape(steps, 3),
        "obs_1": rng.integers(0, 256, (steps, 2, 2), dtype=np.uint8),
        "continuous_action": rng.standard_normal((steps, 2), dtype=np.float32),
        "discrete_action": rng.integers(0, 5, (steps, 1), dtype=np.int32),
        "environment_rewards": rng.standard_normal(steps),
    }
    next_fields = {
        "obs_0": rng.standard_normal(3, dtype=np.float32),
        "obs_1": rng.integers(0, 256, (1, 2, 2), dtype=np.uint8),  # (1, *shape) also accepted
    }
    return fields, next_fields


def assert_matches_reference(buffer: ReplayBuffer, reference: NumpyRing):
    assert len(buffer) == len(reference.steps)
    if not reference.steps:
        return
    batch = buffer.rows(np.arange(len(buffer)))
    for name, spec in SPECS.items():
        expected = np.stack([record[name] for record in reference.steps])
        np.testing.assert_array_equal(batch[name], expected, err_msg=name)
        assert batch[name].dtype == expected.dtype, name
        if spec.has_next:
            expected_next = np.stack([record["next_" + name] for record in reference.steps])
            np.testing.assert_array_equal(batch["next_" + name], expected_next, err_msg=name)
    expected_done = np.array([record["done"] for record in reference.steps])
    np.testing.assert_array_equal(batch.done, expected_done, err_msg="done")


def filled_buffer(seed=0, capacity=50, pushes=40):
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer(capacity, SPECS, seed=seed)
    reference = NumpyRing(capacity)
    for k in range(pushes):
        fields, next_fields = random_trajectory(rng, int(rng.integers(1, 12)), 100 * k)
        terminated = bool(rng.random() < 0.5)
        buffer.push_trajectory(fields, next_fields, terminated=terminated)
        reference.push(fields, next_fields, terminated)
    return buffer, reference


@pytest.mark.parametrize("capacity", [1, 7, 50, 1000])
def test_wraparound_matches_numpy_reference(capacity):
    rng = np.random.default_rng(capacity)
    buffer = ReplayBuffer(capacity, SPECS, seed=1)
    reference = NumpyRing(capacity)
    for k in range(60):
        steps = int(rng.integers(1, 2 * capacity + 2 if capacity < 20 else 40))
        fields, next_fields = random_trajectory(rng, steps, 1000 * k)
        terminated = bool(rng.random() < 0.5)
        buffer.push_trajectory(fields, next_fields, terminated=terminated)
        reference.push(fields, next_fields, terminated)
        if k % 7 == 6:
            keep = int(rng.integers(0, capacity + 1))
            buffer.truncate(keep)
            reference.truncate(keep)
        assert_matches_reference(buffer, reference)


def test_next_obs_and_done_semantics_by_hand():
    specs = {"obs": FieldSpec("float32", (), has_next=True), "reward": FieldSpec("float32")}
    buffer = ReplayBuffer(10, specs)
    obs = np.array([1, 2, 3], dtype=np.float32)
    buffer.push_trajectory(
        {"obs": obs, "reward": obs * 10}, {"obs": np.array(4, np.float32)}, terminated=True
    )
    buffer.push_trajectory(
        {"obs": obs + 10, "reward": obs}, {"obs": np.array([14], np.float32)}, terminated=False
    )
    batch = buffer.rows(range(6))
    np.testing.assert_array_equal(batch["obs"], [1, 2, 3, 11, 12, 13])
    # Inside a trajectory: the next step; at its end: the given final observation.
    np.testing.assert_array_equal(batch["next_obs"], [2, 3, 4, 12, 13, 14])
    # Only the end of the terminated trajectory is done; the truncated one bootstraps.
    np.testing.assert_array_equal(batch.done, [False, False, True, False, False, False])
    np.testing.assert_array_equal(batch.indices, np.arange(6))
    assert batch.fields.keys() == {"obs", "reward"}
    assert batch.next_fields.keys() == {"obs"}
    with pytest.raises(KeyError):
        batch["next_reward"]


def test_sample_shapes_dtypes_and_ownership():
    buffer, _ = filled_buffer()
    batch = buffer.sample(32)
    assert isinstance(batch, ReplayBatch) and len(batch) == 32
    for name, spec in SPECS.items():
        assert batch[name].shape == (32, *spec.shape)
        assert batch[name].dtype == np.dtype(spec.dtype)
        assert batch[name].flags.c_contiguous and batch[name].flags.writeable
    assert batch.done.dtype == np.bool_ and batch.indices.dtype == np.int64
    # Arrays are fresh: writing to one does not change the buffer.
    before = buffer.rows(batch.indices)["obs_0"].copy()
    batch["obs_0"][:] = -1
    np.testing.assert_array_equal(buffer.rows(batch.indices)["obs_0"], before)


def test_sampling_is_uniform():
    buffer = ReplayBuffer(100, {"x": FieldSpec("int64")}, seed=3)
    buffer.push_trajectory({"x": np.arange(100, dtype=np.int64)}, terminated=True)
    draws = np.concatenate([buffer.sample(100)["x"] for _ in range(2000)])
    counts = np.bincount(draws, minlength=100)
    expected = len(draws) / 100
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    # 99 degrees of freedom: P(chi2 > 160) < 1e-4 for a uniform sampler.
    assert chi2 < 160, chi2
    np.testing.assert_array_equal(draws[:100], buffer.rows(draws[:100])["x"])


def test_sampling_is_deterministic_per_seed():
    a, _ = filled_buffer(seed=5)
    b, _ = filled_buffer(seed=5)
    for _ in range(3):
        np.testing.assert_array_equal(a.sample(32).indices, b.sample(32).indices)
    c, _ = filled_buffer(seed=6)
    d, _ = filled_buffer(seed=5)
    c.push_trajectory(*random_trajectory(np.random.default_rng(0), 1, 0), terminated=True)
    d.push_trajectory(*random_trajectory(np.random.default_rng(0), 1, 0), terminated=True)
    assert not np.array_equal(c.sample(32).indices, d.sample(32).indices)
    d.reseed(6)
    c.reseed(6)
    np.testing.assert_array_equal(c.sample(32).indices, d.sample(32).indices)


def test_save_load_round_trip_is_bit_exact_and_samples_the_same(tmp_path):
    buffer, reference = filled_buffer(seed=9)
    buffer.sample(10)  # advance the generator: its position is saved too
    path = tmp_path / "replay.buf"
    buffer.save(path)
    loaded = ReplayBuffer.load(path)
    assert loaded.capacity == buffer.capacity
    assert loaded.fields == buffer.fields
    assert_matches_reference(loaded, reference)
    everything = np.arange(len(buffer))
    for name in SPECS:
        assert loaded.rows(everything)[name].tobytes() == buffer.rows(everything)[name].tobytes()
    for _ in range(3):
        ours, theirs = buffer.sample(40), loaded.sample(40)
        np.testing.assert_array_equal(ours.indices, theirs.indices)
        np.testing.assert_array_equal(ours["next_obs_0"], theirs["next_obs_0"])
    # Later pushes overwrite the same (oldest) steps in both.
    fields, next_fields = random_trajectory(np.random.default_rng(1), 17, 5)
    for target in (buffer, loaded):
        target.push_trajectory(fields, next_fields, terminated=False)
    reference.push(fields, next_fields, False)
    assert_matches_reference(loaded, reference)
    assert_matches_reference(buffer, reference)
    # An explicit seed restarts the generator.
    reseeded = ReplayBuffer.load(path, seed=123)
    buffer.reseed(123)
    np.testing.assert_array_equal(reseeded.sample(20).indices, buffer.sample(20).indices)


def test_empty_buffer_round_trips(tmp_path):
    buffer = ReplayBuffer(8, SPECS)
    buffer.save(tmp_path / "empty.buf")
    loaded = ReplayBuffer.load(tmp_path / "empty.buf")
    assert len(loaded) == 0 and loaded.capacity == 8


@pytest.mark.parametrize(
    "damage",
    ["truncate_half", "truncate_one", "flip_data", "empty", "foreign", "agent_buffer_kind"],
)
def test_bad_files_are_rejected(tmp_path, damage):
    buffer, _ = filled_buffer()
    path = tmp_path / "replay.buf"
    buffer.save(path)
    raw = path.read_bytes()
    if damage == "truncate_half":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "truncate_one":
        path.write_bytes(raw[:-1])
    elif damage == "flip_data":
        path.write_bytes(raw[:-100] + bytes([raw[-100] ^ 0xFF]) + raw[-99:])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "foreign":
        np.save(path.with_suffix(".npy"), np.zeros(100))
        path = path.with_suffix(".npy")
    elif damage == "agent_buffer_kind":
        _native.save_fields(path, "agent_buffer", {"obs_0": np.zeros((3, 3), np.float32)})
    with pytest.raises(CorruptFileError):
        ReplayBuffer.load(path)


def test_inconsistent_replay_records_are_rejected(tmp_path):
    path = tmp_path / "replay.buf"
    ring = np.array([1, 10, 3, 0, 0], dtype=np.int64)
    ok_end = np.array([0, 0, 2], dtype=np.uint8)
    cases = {
        "rows": {"__ring__": ring, "__end__": ok_end, "field/x": np.zeros(2, np.float32)},
        "newest row": {
            "__ring__": ring,
            "__end__": np.array([0, 2, 0], np.uint8),
            "field/x": np.zeros(3, np.float32),
        },
        "unexpected": {
            "__ring__": ring,
            "__end__": ok_end,
            "field/x": np.zeros(3, np.float32),
            "stray": np.zeros(1),
        },
        "capacity": {
            "__ring__": np.array([1, 2, 3, 0, 0], dtype=np.int64),
            "__end__": ok_end,
            "field/x": np.zeros(3, np.float32),
        },
        "trajectory ends": {
            "__ring__": ring,
            "__end__": ok_end,
            "field/x": np.zeros(3, np.float32),
            "next/x": np.zeros(2, np.float32),
        },
    }
    for match, fields in cases.items():
        _native.save_fields(path, "replay_buffer", fields)
        with pytest.raises(CorruptFileError, match=match):
            ReplayBuffer.load(path)


def test_failed_save_keeps_the_previous_file(tmp_path):
    buffer, reference = filled_buffer()
    path = tmp_path / "replay.buf"
    buffer.save(path)
    before = path.read_bytes()
    with pytest.raises(StorageIOError):
        buffer.save(path / "cannot-be-inside-a-file.buf")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "x").write_text("x")
    with pytest.raises(StorageIOError):
        buffer.save(occupied)
    assert path.read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    assert_matches_reference(ReplayBuffer.load(path), reference)


def good_trajectory(steps=4):
    return random_trajectory(np.random.default_rng(0), steps, 0)


@pytest.mark.parametrize(
    "edit, field, match",
    [
        (lambda f, n: f.pop("discrete_action"), "discrete_action", "missing"),
        (lambda f, n: f.update(extra=np.zeros(4)), "extra", "not a field"),
        (
            lambda f, n: f.update(obs_0=f["obs_0"].astype(np.float64)),
            "obs_0",
            "dtype float32",
        ),
        (lambda f, n: f.update(obs_0=np.zeros((4, 4), np.float32)), "obs_0", r"\(steps, 3\)"),
        (lambda f, n: f.update(environment_rewards=np.zeros(3)), "environment_rewards", "rows"),
        (lambda f, n: f.update(obs_0=np.zeros((4, 6), np.float32)[:, ::2]), "obs_0", "contig"),
        (lambda f, n: n.pop("obs_1"), "obs_1", "missing"),
        (lambda f, n: n.update(obs_0=np.zeros((2, 3), np.float32)), "obs_0", r"\(3,\)"),
        (lambda f, n: n.update(continuous_action=np.zeros(2, np.float32)), "continuous", "next"),
    ],
)
def test_bad_trajectories_name_the_field_and_store_nothing(edit, field, match):
    buffer, reference = filled_buffer(capacity=30, pushes=5)
    fields, next_fields = good_trajectory()
    edit(fields, next_fields)
    with pytest.raises(InvalidArgumentError, match=match) as info:
        buffer.push_trajectory(fields, next_fields, terminated=True)
    assert field in str(info.value)
    assert_matches_reference(buffer, reference)


def test_empty_trajectory_is_rejected():
    buffer = ReplayBuffer(5, {"x": FieldSpec("float32")})
    with pytest.raises(InvalidArgumentError, match="at least one step"):
        buffer.push_trajectory({"x": np.zeros(0, np.float32)}, terminated=True)


def test_batch_larger_than_buffer_is_a_clear_error():
    buffer = ReplayBuffer(100, {"x": FieldSpec("float32")})
    with pytest.raises(InvalidArgumentError, match="cannot sample 1 steps .* holding 0"):
        buffer.sample(1)
    buffer.push_trajectory({"x": np.zeros(5, np.float32)}, terminated=True)
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        buffer.sample(6)
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        buffer.sample(-1)
    assert len(buffer.sample(0)) == 0
    assert len(buffer.sample(5)) == 5


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: ReplayBuffer(0, SPECS), "capacity"),
        (lambda: ReplayBuffer(10, {}), "fields"),
        (lambda: ReplayBuffer(10, SPECS, seed=-1), "seed"),
        (lambda: ReplayBuffer(10, {"x": ("float32", ())}), "FieldSpec"),
        (lambda: ReplayBuffer(10, {"a/b": FieldSpec("float32")}), "a/b"),
        (lambda: FieldSpec("float16"), "float16"),
        (lambda: FieldSpec("not a dtype"), "dtype"),
        (lambda: FieldSpec("float32", (0,)), "shape"),
    ],
)
def test_bad_construction_is_rejected(make, match):
    with pytest.raises(InvalidArgumentError, match=match):
        make()


def test_clear_and_truncate():
    buffer, reference = filled_buffer()
    buffer.truncate(10**6)
    assert_matches_reference(buffer, reference)
    buffer.truncate(13)
    reference.truncate(13)
    assert_matches_reference(buffer, reference)
    buffer.clear()
    assert len(buffer) == 0
    fields, next_fields = good_trajectory(3)
    buffer.push_trajectory(fields, next_fields, terminated=True)
    empty = NumpyRing(buffer.capacity)
    empty.push(fields, next_fields, True)
    assert_matches_reference(buffer, empty)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(1, 25), st.booleans()),
        st.tuples(st.just("truncate"), st.integers(0, 40), st.just(False)),
        st.tuples(st.just("clear"), st.just(0), st.just(False)),
        st.tuples(st.just("reload"), st.just(0), st.just(False)),
    ),
    max_size=40,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(capacity=st.integers(1, 30), ops=operations, seed=st.integers(0, 2**64 - 1))
def test_random_operation_sequences_match_reference(tmp_path, capacity, ops, seed):
    """Any mix of pushes (wrapping, longer than capacity), truncations, clears and
    save/load round trips leaves the same steps, next values and done flags as the
    reference, and a reload samples what the original would have."""
    rng = np.random.default_rng(seed % 2**32)
    buffer = ReplayBuffer(capacity, SPECS, seed=seed)
    reference = NumpyRing(capacity)
    for k, (op, amount, flag) in enumerate(ops):
        if op == "push":
            fields, next_fields = random_trajectory(rng, amount, 100 * k)
            buffer.push_trajectory(fields, next_fields, terminated=flag)
            reference.push(fields, next_fields, flag)
        elif op == "truncate":
            buffer.truncate(amount)
            reference.truncate(amount)
        elif op == "clear":
            buffer.clear()
            reference.steps.clear()
        else:
            path = tmp_path / "ops.buf"
            buffer.save(path)
            loaded = ReplayBuffer.load(path)
            draws = min(5, len(buffer))
            np.testing.assert_array_equal(
                loaded.sample(draws).indices, buffer.sample(draws).indices
            )
            buffer = loaded
        assert_matches_reference(buffer, reference)


# -- several trajectories per push, sequences, resize -----------------------------------


def concatenated(trajectories):
    """push_trajectories' arguments for a list of (fields, next_fields, terminated)."""
    fields = {name: np.concatenate([f[name] for f, _, _ in trajectories]) for name in SPECS}
    next_fields = {
        name: np.stack([np.asarray(n[name]).reshape(spec.shape) for _, n, _ in trajectories])
        for name, spec in SPECS.items()
        if spec.has_next
    }
    lengths = [len(f["obs_0"]) for f, _, _ in trajectories]
    return fields, next_fields, lengths, [t for _, _, t in trajectories]


@settings(max_examples=50, deadline=None)
@given(
    capacity=st.integers(1, 40),
    lengths=st.lists(st.integers(1, 15), min_size=1, max_size=8),
    seed=st.integers(0, 2**32 - 1),
)
def test_pushing_trajectories_together_matches_the_reference(capacity, lengths, seed):
    """One push_trajectories call stores (and samples) what the pushes one by one do."""
    rng = np.random.default_rng(seed)
    together = ReplayBuffer(capacity, SPECS, seed=seed)
    reference = NumpyRing(capacity)
    trajectories = []
    for k, steps in enumerate(lengths):
        fields, next_fields = random_trajectory(rng, steps, 100 * k)
        terminated = bool(rng.random() < 0.5)
        trajectories.append((fields, next_fields, terminated))
        reference.push(fields, next_fields, terminated)
    together.push_trajectories(*concatenated(trajectories))
    assert_matches_reference(together, reference)
    one_by_one = ReplayBuffer(capacity, SPECS, seed=seed)
    for fields, next_fields, terminated in trajectories:
        one_by_one.push_trajectory(fields, next_fields, terminated=terminated)
    draws = min(8, len(together))
    np.testing.assert_array_equal(together.sample(draws).indices, one_by_one.sample(draws).indices)


def test_bad_trajectory_batches_name_the_problem_and_store_nothing():
    buffer, reference = filled_buffer(capacity=30, pushes=4)
    rng = np.random.default_rng(1)
    two = [(*random_trajectory(rng, 3, 0), True), (*random_trajectory(rng, 2, 50), False)]
    fields, next_fields, lengths, terminated = concatenated(two)
    cases = [
        ((fields, next_fields, [3, 1], terminated), "add up to the 5 rows"),
        ((fields, next_fields, [3, 2], [True]), "1 flags for 2 trajectories"),
        ((fields, next_fields, [5, 0], terminated), r"lengths\[1\]"),
        (
            (fields, {**next_fields, "obs_0": next_fields["obs_0"][:1]}, lengths, terminated),
            "(2, 3)",
        ),
        ((fields, next_fields, [], []), "at least one trajectory"),
    ]
    for arguments, match in cases:
        with pytest.raises(InvalidArgumentError, match=match):
            buffer.push_trajectories(*arguments)
    assert_matches_reference(buffer, reference)


def test_sequences_are_aligned_runs_of_rows_drawn_uniformly():
    buffer = ReplayBuffer(100, {"x": FieldSpec("int64", (), has_next=True)}, seed=2)
    steps = np.arange(62, dtype=np.int64)
    buffer.push_trajectory({"x": steps}, {"x": np.array(62)}, terminated=True)
    batch = buffer.sample_sequences(4000, 5)
    assert len(batch) == 20_000
    starts = batch["x"].reshape(-1, 5)
    # Each draw is 5 consecutive rows from a multiple of 5; the 2 rows past the last
    # whole sequence (60, 61) are never drawn.
    np.testing.assert_array_equal(starts, starts[:, :1] + np.arange(5))
    assert (starts[:, 0] % 5 == 0).all() and starts.max() <= 59
    np.testing.assert_array_equal(batch["next_x"], batch["x"] + 1)
    np.testing.assert_array_equal(batch.indices, batch["x"])
    counts = np.bincount(starts[:, 0] // 5, minlength=12)
    expected = 4000 / 12
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 45, chi2  # 11 degrees of freedom: P(chi2 > 45) < 1e-5
    with pytest.raises(InvalidArgumentError, match="holding 62"):
        buffer.sample_sequences(1, 63)
    with pytest.raises(InvalidArgumentError, match="sequence_length"):
        buffer.sample_sequences(1, 0)


def test_sampling_steps_is_sampling_sequences_of_one():
    a, _ = filled_buffer(seed=4)
    b, _ = filled_buffer(seed=4)
    for size in (1, 16, len(a)):
        first, second = a.sample(size), b.sample_sequences(size, 1)
        np.testing.assert_array_equal(first.indices, second.indices)
        for name in SPECS:
            np.testing.assert_array_equal(first[name], second[name])
    # With replacement: more draws than rows is fine for sequences.
    assert len(b.sample_sequences(3 * len(b), 1)) == 3 * len(b)


@settings(max_examples=40, deadline=None)
@given(
    capacity=st.integers(1, 30),
    new_capacity=st.integers(1, 60),
    pushes=st.lists(st.integers(1, 20), max_size=10),
    seed=st.integers(0, 2**32 - 1),
)
def test_resize_keeps_the_newest_rows_and_wraps_like_a_new_ring(
    capacity, new_capacity, pushes, seed
):
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer(capacity, SPECS, seed=seed)
    reference = NumpyRing(capacity)
    for k, steps in enumerate(pushes):
        fields, next_fields = random_trajectory(rng, steps, 100 * k)
        buffer.push_trajectory(fields, next_fields, terminated=k % 2 == 0)
        reference.push(fields, next_fields, k % 2 == 0)
    state = buffer._ring.rng_state
    buffer.resize(new_capacity)
    reference.capacity = new_capacity
    reference.truncate(new_capacity)
    assert buffer.capacity == new_capacity and buffer._ring.rng_state == state
    assert_matches_reference(buffer, reference)
    for k in range(3):
        fields, next_fields = random_trajectory(rng, int(rng.integers(1, 25)), 10_000 + 100 * k)
        buffer.push_trajectory(fields, next_fields, terminated=True)
        reference.push(fields, next_fields, True)
        assert_matches_reference(buffer, reference)
