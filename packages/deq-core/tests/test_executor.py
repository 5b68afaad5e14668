"""Backend-free training machinery: ``map_chunks`` (process pool, dask), atomic files, checkpoints, config."""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from deq_core.config import from_dict
from deq_core.errors import CheckpointError, ConfigError
from deq_core.training import (
    CheckpointDir,
    TrainConfig,
    atomic_path,
    atomic_write,
    map_chunks,
    run_steps,
    spawn_seeds,
)


def simulate(seed: int) -> tuple[int, float]:
    """A stand-in for one dataset sample: the worker's pid and a seeded random draw."""
    return os.getpid(), float(np.random.default_rng(seed).standard_normal())


def fail_on_seven(item: int) -> int:
    """Raise for item 7."""
    if item == 7:
        raise ValueError("item seven is bad")
    return item


def test_map_chunks_process_pool_keeps_order_and_uses_workers():
    seeds = spawn_seeds(0, 23)
    results = map_chunks(simulate, seeds, workers=2, chunk_size=3, progress=True)
    expected = [float(np.random.default_rng(s).standard_normal()) for s in seeds]
    assert [value for _, value in results] == expected
    pids = {pid for pid, _ in results}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_map_chunks_results_do_not_depend_on_chunking():
    seeds = spawn_seeds(5, 10)
    with ThreadPoolExecutor(3) as pool:
        a = map_chunks(simulate, seeds, executor=pool, chunk_size=1, progress=False)
        b = map_chunks(simulate, seeds, executor=pool, chunk_size=4, progress=False)
    assert [v for _, v in a] == [v for _, v in b]
    assert map_chunks(simulate, [], progress=False) == []


def test_map_chunks_reports_the_failing_chunk():
    with pytest.raises(ValueError, match="item seven is bad") as info:
        map_chunks(fail_on_seven, range(12), workers=2, chunk_size=5, progress=False)
    assert "in map_chunks chunk of items [5, 10) of 12" in info.value.__notes__
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        map_chunks(simulate, [1], workers=0)
    with pytest.raises(TypeError, match="concurrent.futures.Executor"):
        map_chunks(simulate, [1], executor=object())


def test_map_chunks_on_a_local_dask_cluster():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        seeds = spawn_seeds(1, 9)
        results = map_chunks(simulate, seeds, executor=client.get_executor(), chunk_size=2, progress=False)
    assert [v for _, v in results] == [float(np.random.default_rng(s).standard_normal()) for s in seeds]
    assert os.getpid() not in {pid for pid, _ in results}


def test_spawn_seeds_are_distinct_and_reproducible():
    seeds = spawn_seeds(3, 100)
    assert seeds == spawn_seeds(3, 100) and len(set(seeds)) == 100 and all(0 <= s < 2**63 for s in seeds)
    assert spawn_seeds(3, 5) == seeds[:5]


def test_atomic_write_replaces_whole_files_only(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError, match="crash"), atomic_path(target) as temporary:
        temporary.write_text("half of the new cont")
        raise RuntimeError("crash")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write(tmp_path / "missing" / "b.txt", "x")


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_gives_the_mode_the_umask_allows(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        written = atomic_write(tmp_path / "report.json", "{}")
    finally:
        os.umask(previous)
    assert written.stat().st_mode & 0o777 == mode


def _write_checkpoint(directory: CheckpointDir, step: int) -> None:
    directory.prepare()
    atomic_write(directory.path(step, "model.bin"), bytes(step))
    directory.commit(step, ["model.bin"], {"loss": 1.0 / step})


def test_checkpoint_dir_commits_prunes_and_skips_incomplete(tmp_path):
    directory = CheckpointDir(tmp_path / "ckpt", keep=2)
    assert directory.latest() is None
    for step in (1, 2, 3, 4):
        _write_checkpoint(directory, step)
    assert directory.steps() == [3, 4]
    assert sorted(p.name for p in directory.directory.iterdir()) == [
        "step-000000003.json",
        "step-000000003.model.bin",
        "step-000000004.json",
        "step-000000004.model.bin",
    ]
    assert directory.manifest(4)["metadata"] == {"loss": 0.25}
    atomic_write(directory.path(5, "model.bin"), b"written but never committed")
    assert directory.latest() == 4
    directory.path(4, "model.bin").write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="ignoring checkpoint 4"):
        assert directory.latest() == 3
    with pytest.raises(FileNotFoundError, match="was not written"):
        directory.commit(9, ["model.bin"])
    with pytest.raises(ValueError, match="bad checkpoint file name"):
        directory.path(1, "../escape")
    directory.path(4, "model.bin").write_bytes(bytes(4))  # repaired
    (directory.directory / "step-000000006.json").write_text("{not json")
    with pytest.warns(UserWarning, match="not valid JSON"):
        assert directory.steps() == [3, 4]
    assert json.loads((directory.directory / "step-000000003.json").read_text())["step"] == 3


def test_checkpoint_dir_checksums_catch_damage_of_the_same_size(tmp_path):
    directory = CheckpointDir(tmp_path, keep=3)
    for step in (1, 2, 3):
        _write_checkpoint(directory, step)
    entry = directory.manifest(3)["files"]["model.bin"]
    assert entry["bytes"] == 3 and len(entry["sha256"]) == 64
    assert directory.verify(3)["step"] == 3
    directory.path(3, "model.bin").write_bytes(b"\x00\x01\x00")  # one flipped byte, size unchanged
    assert directory.steps() == [1, 2, 3]  # the cheap listing sees sizes only
    with pytest.raises(CheckpointError, match=r"step-000000003\.model\.bin does not match the SHA-256"):
        directory.verify(3)
    with pytest.warns(UserWarning, match=r"ignoring checkpoint 3: .*step-000000003\.model\.bin"):
        assert directory.latest() == 2
    with pytest.raises(CheckpointError, match="has no file step-000000002.other.bin"):
        directory.verify(2, ["other.bin"])
    manifest_2 = (tmp_path / "step-000000002.json").read_text()
    (tmp_path / "step-000000003.json").write_text(manifest_2)  # step 2's manifest copied over step 3's
    with pytest.warns(UserWarning, match="records step 2"):
        assert directory.steps() == [1, 2]
    with pytest.raises(CheckpointError, match="records step 2"):
        directory.verify(3)
    with pytest.raises(FileNotFoundError, match="no checkpoint at step 7"):
        directory.verify(7)


def test_checkpoint_dir_refuses_manifests_without_checksums(tmp_path):
    directory = CheckpointDir(tmp_path)
    _write_checkpoint(directory, 1)
    old = {"format": 1, "step": 2, "files": {"model.bin": 2}, "metadata": {}}
    atomic_write(directory.path(2, "model.bin"), bytes(2))
    (tmp_path / "step-000000002.json").write_text(json.dumps(old))
    for call in (directory.steps, directory.latest, lambda: directory.verify(2)):
        with pytest.raises(CheckpointError, match="format 1, written by an older deq-core without checksums"):
            call()
    with pytest.raises(ConfigError, match="CheckpointDir.keep"):
        CheckpointDir(tmp_path, keep=0)


def test_train_config_validates_and_loads_from_mappings():
    config = from_dict(TrainConfig, {"steps": 5, "eval_every": 2, "jacobian_weight": 0.5})
    assert config.steps == 5 and config.jacobian_weight == 0.5
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['step'\]"):
        from_dict(TrainConfig, {"step": 5})
    for bad, match in [
        ({"steps": 2.5}, "TrainConfig.steps"),
        ({"steps": 1, "jacobian_weight": math.nan}, "jacobian_weight"),
        ({"steps": 1, "threads": 0}, "threads"),
        ({"steps": 1, "resume": "yes"}, "resume must be a bool"),
        ({"steps": 1, "checkpoint_every": 2}, "checkpoint_dir is None"),
    ]:
        with pytest.raises(ConfigError, match=match):
            TrainConfig(**bad)


def test_run_steps_cadence():
    calls = []
    config = TrainConfig(steps=7, eval_every=3, log_every=2, checkpoint_every=5, checkpoint_dir="unused")
    history = run_steps(
        config,
        1,
        lambda i: calls.append(("step", i)) or float(i),
        evaluate=lambda done: calls.append(("eval", done)) or {"m": float(done)},
        save=lambda done, metrics: calls.append(("save", done, metrics)),
        show=False,
    )
    assert [c[1] for c in calls if c[0] == "step"] == [1, 2, 3, 4, 5, 6]
    assert [c for c in calls if c[0] != "step"] == [
        ("eval", 3),
        ("save", 5, {"m": 3.0}),
        ("eval", 6),
        ("eval", 7),
        ("save", 7, {"m": 7.0}),
    ]
    assert history.start == 1 and history.losses == [(2, 1.0), (4, 3.0), (6, 5.0), (7, 6.0)]
    assert [s for s, _ in history.evaluations] == [3, 6, 7]
