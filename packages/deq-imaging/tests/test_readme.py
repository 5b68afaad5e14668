"""The README's train -> save -> load -> apply example runs as written and prints matching PSNRs."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

from deq_core import cli

README = Path(__file__).resolve().parents[1] / "README.md"
INSTALLED = [b for b in ("torch", "jax") if importlib.util.find_spec(b) is not None]
BACKEND = os.environ.get("DEQ_BACKEND") or (INSTALLED[0] if INSTALLED else "torch")


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


@pytest.mark.skipif(BACKEND not in INSTALLED, reason=f"{BACKEND} not installed")
def test_train_save_load_apply_example(tmp_path, monkeypatch, capsys):
    section = _section("Train, save, load, apply")
    shell = re.search(r"```bash\n(.*?)```", section, re.S).group(1).splitlines()
    run = shell[0].split("#")[0].split()
    assert run[:3] == ["DEQ_SMOKE=1", "deq", "run"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEQ_SMOKE", "1")
    assert cli.main([*run[2:], "--backend", BACKEND]) == 0
    capsys.readouterr()
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, str(README), "exec"), {})
    printed, reported = map(float, capsys.readouterr().out.split())
    assert printed == pytest.approx(reported, abs=0.01)
