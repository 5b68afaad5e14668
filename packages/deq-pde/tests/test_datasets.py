"""Darcy dataset generation: manifest, chunk reuse on resume, interruption, loader and config mismatch."""

import concurrent.futures as cf
import dataclasses
import json

import numpy as np
import pytest

from deq_pde.datasets import DarcyConfig, darcy_sample, generate_darcy, load_darcy, store
from deq_pde.datasets.darcy import darcy_chunk
from deq_pde.evaluation import relative_l2_grid

CONFIG = DarcyConfig(grid_size=9, chunk_size=3, seed=7)


def test_subset_then_full_reuses_chunks(tmp_path):
    with cf.ThreadPoolExecutor(2) as pool:
        generate_darcy(tmp_path, 5, CONFIG, executor=pool, progress=False)
        first = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("chunk_*.npz")}
        assert sorted(first) == ["chunk_00000000_00000003.npz", "chunk_00000003_00000005.npz"]
        generate_darcy(tmp_path, 8, CONFIG, executor=pool, progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("chunk_*.npz")}
    assert after["chunk_00000000_00000003.npz"] == first["chunk_00000000_00000003.npz"]
    assert sorted(after) == [
        "chunk_00000000_00000003.npz",
        "chunk_00000003_00000006.npz",
        "chunk_00000006_00000008.npz",
    ]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["num_samples"] == 8 and manifest["config_hash"] == store.config_hash(manifest["config"])
    coef, sol = load_darcy(tmp_path)
    assert coef.shape == sol.shape == (8, 9, 9)
    assert set(np.unique(coef)) <= {3.0, 12.0} and len(np.unique(coef)) == 2
    sample = darcy_sample(CONFIG, 4)
    assert np.array_equal(sol[4], sample["solution"]) and np.array_equal(coef[4], sample["coefficient"])
    assert np.allclose(sol[:, 0, :], 0.0) and np.all(sol[:, 1:-1, 1:-1] > 0)
    assert load_darcy(tmp_path, 4)[1].shape == (4, 9, 9)


def test_interrupted_generation_resumes(tmp_path):
    config = dataclasses.asdict(CONFIG)
    calls = []
    failing = [True]

    def flaky(cfg, start, stop):
        calls.append(start)
        if start == 3 and failing[0]:
            raise RuntimeError("simulated interruption")
        return darcy_chunk(cfg, start, stop)

    with cf.ThreadPoolExecutor(1) as pool, pytest.raises(RuntimeError, match="simulated"):
        store.generate(tmp_path, "darcy", config, flaky, 9, 3, executor=pool, progress=False)
    assert (tmp_path / "chunk_00000000_00000003.npz").exists()
    assert (
        not list(tmp_path.glob("*.tmp"))
        and json.loads((tmp_path / "manifest.json").read_text())["num_samples"] == 0
    )
    calls.clear()
    failing[0] = False
    with cf.ThreadPoolExecutor(1) as pool:
        store.generate(tmp_path, "darcy", config, flaky, 9, 3, executor=pool, progress=False)
    assert 0 not in calls and load_darcy(tmp_path)[0].shape == (9, 9, 9)


def test_default_process_pool_and_mismatch(tmp_path):
    generate_darcy(tmp_path, 2, DarcyConfig(grid_size=5, chunk_size=1, degree=2), workers=1, progress=False)
    coef, sol = load_darcy(tmp_path)
    fine = darcy_sample(DarcyConfig(grid_size=5, chunk_size=1, degree=2, mesh_cells=32), 1)
    assert relative_l2_grid(sol[1], fine["solution"]) < 0.05
    with pytest.raises(ValueError, match=r"different 'darcy' config .*grid_size: 5 on disk vs 9 requested"):
        generate_darcy(tmp_path, 2, DarcyConfig(grid_size=9, chunk_size=1, degree=2), progress=False)
    with pytest.raises(ValueError, match="cannot load 3"):
        load_darcy(tmp_path, 3)
    with pytest.raises(ValueError, match="not a generated dataset folder"):
        load_darcy(tmp_path / "nothing")
