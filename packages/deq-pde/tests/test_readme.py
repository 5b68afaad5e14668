"""The README's train -> save -> load -> apply example runs as written (smoke size), agreeing with predict."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from backends import FRAMEWORKS

from deq_core import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _command(line: str) -> list[str]:
    words = shlex.split(line.split("#")[0])
    assert words[0] == "deq", line
    return words[1:]


@pytest.mark.skipif(not FRAMEWORKS, reason="needs torch or jax")
def test_train_save_load_apply_example(tmp_path, monkeypatch, capsys):
    section = _section("Train, save, load, apply")
    train, predict = re.findall(r"```bash\n(.*?)```", section, re.S)
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEQ_SMOKE", "1")
    assert cli.main([*_command(train), "--backend", FRAMEWORKS[0]]) == 0
    capsys.readouterr()
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    printed = float(capsys.readouterr().out)
    assert 0 < printed < 2
    assert cli.main(_command(predict)) == 0
    out = Path(_command(predict)[_command(predict).index("--out") + 1])
    assert np.allclose(np.load(out / "solutions.npy"), namespace["u8"], atol=1e-6)
    rows = json.loads((out / "predictions.json").read_text())["rows"]
    assert len(rows) == 4 and all(row["rel_l2"] > 0 for row in rows)
