"""The shipped pretrained imaging models: each still scores its card's subset PSNR (within 0.1 dB) through
``deq_imaging.pretrained`` and ``deq predict --model pretrained:imaging/NAME``, on every installed backend."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import deq_imaging
from deq_core import cli
from deq_core.errors import ModelFileError
from deq_core.model_files import read_manifest
from deq_core.testing.fixtures import shared_data
from deq_imaging.pretrained import folder, read_card, subset, subset_metrics

SHIPPED = [(t, b) for t in ("deblur", "denoise", "ct") for b in ("torch", "jax")]
INSTALLED = [(name, b) for name, b in SHIPPED if importlib.util.find_spec(b) is not None]
TOLERANCE = 0.1  # dB, on the card's subset PSNR
MAX_BYTES = 3 * 2**20
ROOT = Path(__file__).resolve().parents[3]  # the repository: the cards give data folders relative to it


@pytest.fixture(scope="module", params=INSTALLED, ids="-".join)
def shipped_model(request) -> tuple[str, str]:
    """Each shipped (name, backend) whose backend is installed, in turn."""
    return request.param


def test_ships_small_models_with_cards() -> None:
    for name, backend in SHIPPED:
        path = folder(name, backend)
        manifest = read_manifest(path)
        assert (manifest["domain"], manifest["task"], manifest["backend"]) == ("imaging", name, backend)
        assert manifest["model_class"] == "ImplicitNet" and manifest["name"] == "implicit"
        assert sum(p.stat().st_size for p in path.iterdir()) <= MAX_BYTES
        recipe = read_card(path)["subset"]
        assert recipe["task"] == name and recipe["config"].keys() == manifest["config"].keys()
        assert {k: v for k, v in recipe["config"].items() if k != "data"} == {
            k: v for k, v in manifest["config"].items() if k != "data"
        }
        assert 1 <= recipe["count"] <= manifest["config"]["n_test"]


def _card(name: str, backend: str) -> dict:
    """The card of ``NAME-BACKEND``; its training images (``../shared/data``) must be here in CI."""
    card = read_card(folder(name, backend))
    data = card["subset"]["config"].get("data")
    if data is not None:
        shared_data(str(Path(data).relative_to("../shared/data")))  # fails in CI, skips elsewhere
    return card


def test_pretrained_scores_its_card(shipped_model) -> None:
    name, backend = shipped_model
    model = deq_imaging.pretrained(name, backend=backend)
    assert model.manifest["backend"] == backend
    card = _card(name, backend)
    metrics = subset_metrics(model, card["subset"], ROOT)
    assert metrics["steps"] == card["subset_metrics"]["steps"]
    assert abs(metrics["psnr"] - card["subset_metrics"]["psnr"]) <= TOLERANCE


def test_deq_predict_pretrained_scores_its_card(shipped_model, tmp_path, capsys) -> None:
    name, backend = shipped_model
    card = _card(name, backend)
    degraded, clean = subset(card["subset"], ROOT)
    np.save(tmp_path / "degraded.npy", degraded)
    np.save(tmp_path / "clean.npy", clean)
    argv = ["predict", "--model", f"pretrained:imaging/{name}", "--backend", backend]
    argv += ["--input", str(tmp_path / "degraded.npy"), "--reference", str(tmp_path / "clean.npy")]
    assert cli.main([*argv, "--out", str(tmp_path / "o")]) == 0, capsys.readouterr().err
    rows = json.loads((tmp_path / "o" / "predictions.json").read_text())["rows"]
    assert len(rows) == card["subset"]["count"]
    expected = card["subset_metrics"]["psnr"]
    assert abs(np.mean([row["psnr"] for row in rows]) - expected) <= TOLERANCE


def test_unknown_pretrained_model_lists_what_ships() -> None:
    shipped = r"deblur-jax, deblur-torch, denoise-jax, denoise-torch"
    with pytest.raises(ModelFileError, match=rf"no pretrained model 'inpaint'.*{shipped}"):
        deq_imaging.pretrained("inpaint", backend="torch")


def test_card_without_json_block_is_named(tmp_path) -> None:
    (tmp_path / "CARD.md").write_text("# a card\n")
    with pytest.raises(ModelFileError, match="CARD.md: no readable model card"):
        read_card(tmp_path)
