"""The shipped pretrained random-lp models: each still scores its card's subset metric (2% relative) through
``deq_opt.pretrained`` and ``deq predict --model pretrained:opt/random-lp``, on every installed backend."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import deq_opt
from deq_core import cli
from deq_core.errors import ModelFileError
from deq_core.model_files import read_manifest
from deq_opt.datasets import write_mps
from deq_opt.datasets.labels import LabelledSet, label
from deq_opt.pretrained import folder, read_card, subset_metrics

INSTALLED = [b for b in ("torch", "jax") if importlib.util.find_spec(b) is not None]
TOLERANCE = 0.02  # relative, on the card's subset primal error
MAX_BYTES = 3 * 2**20


@pytest.fixture(scope="module", params=INSTALLED)
def backend(request) -> str:
    """Each installed backend in turn."""
    return request.param


def _subset(backend: str, cache: Path) -> tuple[dict, LabelledSet]:
    """The card of ``random-lp-BACKEND`` and its subset of the test set, rebuilt from the card's recipe."""
    card = read_card(folder("random-lp", backend))
    recipe = card["subset"]
    lps = label(
        recipe["generator"], recipe["params"], recipe["count"], recipe["seed"], cache=cache, workers=1
    )
    return card, lps


def test_ships_torch_and_jax_models_small_with_cards() -> None:
    for backend in ("torch", "jax"):
        path = folder("random-lp", backend)
        manifest = read_manifest(path)
        assert (manifest["domain"], manifest["task"], manifest["backend"]) == ("opt", "random-lp", backend)
        assert manifest["model_class"] == "LearnedPDHG" and manifest["name"] == "implicit"
        assert sum(p.stat().st_size for p in path.iterdir()) <= MAX_BYTES
        card = read_card(path)
        assert card["subset"]["seed"] == manifest["apply"]["test_set"]["seed"]
        assert card["subset"]["count"] <= manifest["apply"]["test_set"]["count"]


def test_pretrained_scores_its_card(backend, tmp_path) -> None:
    model = deq_opt.pretrained("random-lp", backend=backend)
    assert model.manifest["backend"] == backend
    card = read_card(folder("random-lp", backend))
    metrics = subset_metrics(model, card["subset"], cache=tmp_path)
    expected = card["subset_metrics"]["primal_error"]
    assert metrics["primal_error"] == pytest.approx(expected, rel=TOLERANCE)


def test_deq_predict_pretrained_scores_its_card(backend, tmp_path, capsys) -> None:
    card, subset = _subset(backend, tmp_path / "cache")
    (tmp_path / "lps").mkdir()
    (tmp_path / "optima").mkdir()
    for k, lp in enumerate(subset.lps):
        write_mps(lp, tmp_path / "lps" / f"lp{k:02d}.mps")
        np.savez(tmp_path / "optima" / f"lp{k:02d}.npz", x=subset.x[k], y=subset.y[k])
    argv = ["predict", "--model", "pretrained:opt/random-lp", "--backend", backend]
    argv += [
        "--input",
        str(tmp_path / "lps"),
        "--reference",
        str(tmp_path / "optima"),
        "--out",
        str(tmp_path / "o"),
    ]
    assert cli.main(argv) == 0, capsys.readouterr().err
    rows = json.loads((tmp_path / "o" / "predictions.json").read_text())["rows"]
    assert len(rows) == card["subset"]["count"]
    expected = card["subset_metrics"]["primal_error"]
    assert np.mean([row["primal_error"] for row in rows]) == pytest.approx(expected, rel=TOLERANCE)


def test_unknown_pretrained_model_lists_what_ships() -> None:
    with pytest.raises(ModelFileError, match=r"no pretrained model 'deblur'.*random-lp-jax, random-lp-torch"):
        deq_opt.pretrained("deblur", backend="torch")


def test_card_without_json_block_is_named(tmp_path) -> None:
    (tmp_path / "CARD.md").write_text("# a card\n")
    with pytest.raises(ModelFileError, match="CARD.md: no readable model card"):
        read_card(tmp_path)
