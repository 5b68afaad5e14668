"""The shipped pretrained darcy models: each still scores its card's subset error (2% relative) through
``deq_pde.pretrained`` and ``deq predict --model pretrained:pde/darcy``, on every installed backend."""

from __future__ import annotations

import json

import numpy as np
import pytest
from backends import FRAMEWORKS

import deq_pde
from deq_core import cli
from deq_core.errors import ModelFileError
from deq_core.model_files import read_manifest
from deq_pde.pretrained import folder, read_card, subset, subset_metrics

TOLERANCE = 0.02  # relative, on the card's subset rel. L2
MAX_BYTES = 3 * 2**20


@pytest.fixture(scope="module", params=FRAMEWORKS)
def backend(request) -> str:
    """Each installed backend in turn."""
    return request.param


def test_ships_torch_and_jax_models_small_with_cards() -> None:
    for backend in ("torch", "jax"):
        path = folder("darcy", backend)
        manifest = read_manifest(path)
        assert (manifest["domain"], manifest["task"], manifest["backend"]) == ("pde", "darcy", backend)
        assert manifest["model_class"] == "FNODEQ" and manifest["name"] == "implicit"
        assert sum(p.stat().st_size for p in path.iterdir()) <= MAX_BYTES
        recipe = read_card(path)["subset"]
        assert recipe["data"] == manifest["apply"]["data"]
        assert recipe["start"] == manifest["config"]["n_train"]  # the test fields follow the training ones
        assert 1 <= recipe["count"] <= manifest["config"]["n_test"]


def test_pretrained_scores_its_card(backend) -> None:
    model = deq_pde.pretrained("darcy", backend=backend)
    assert model.manifest["backend"] == backend and model.implicit
    card = read_card(folder("darcy", backend))
    metrics = subset_metrics(model, card["subset"])
    assert metrics["steps"] == card["subset_metrics"]["steps"]
    assert metrics["rel_l2"] == pytest.approx(card["subset_metrics"]["rel_l2"], rel=TOLERANCE)


def test_deq_predict_pretrained_scores_its_card(backend, tmp_path, capsys) -> None:
    card = read_card(folder("darcy", backend))
    coefficient, solution = subset(card["subset"])
    np.savez(tmp_path / "fields.npz", coefficient=coefficient, solution=solution)
    argv = ["predict", "--model", "pretrained:pde/darcy", "--backend", backend]
    argv += ["--input", str(tmp_path / "fields.npz"), "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 0, capsys.readouterr().err
    rows = json.loads((tmp_path / "o" / "predictions.json").read_text())["rows"]
    assert len(rows) == card["subset"]["count"]
    assert np.load(tmp_path / "o" / "solutions.npy").shape == coefficient.shape
    expected = card["subset_metrics"]["rel_l2"]
    assert np.mean([row["rel_l2"] for row in rows]) == pytest.approx(expected, rel=TOLERANCE)


def test_unknown_pretrained_model_lists_what_ships() -> None:
    with pytest.raises(ModelFileError, match=r"no pretrained model 'nonlinear'.*darcy-jax, darcy-torch"):
        deq_pde.pretrained("nonlinear", backend="torch")


def test_card_without_json_block_is_named(tmp_path) -> None:
    (tmp_path / "CARD.md").write_text("# a card\n")
    with pytest.raises(ModelFileError, match="CARD.md: no readable model card"):
        read_card(tmp_path)
