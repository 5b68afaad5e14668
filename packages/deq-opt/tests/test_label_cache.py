"""The GLOP label cache: its location (DEQ_OPT_CACHE, XDG_CACHE_HOME, ~/.cache), file modes, bad paths."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from deq_core.errors import ConfigError
from deq_opt.datasets.labels import cache_dir, label

TINY = ("random_lp", {"m": 4, "n": 9, "nnz": 16})


@pytest.mark.parametrize(
    ("own", "xdg", "expected"),
    [
        ("{tmp}/own", "{tmp}/xdg", "{tmp}/own"),
        ("", "{tmp}/xdg", "{tmp}/xdg/deq-opt"),
        (None, "relative/xdg", "{home}/.cache/deq-opt"),
        (None, None, "{home}/.cache/deq-opt"),
    ],
)
def test_cache_dir_follows_the_environment(tmp_path, monkeypatch, own, xdg, expected) -> None:
    """DEQ_OPT_CACHE wins, then an absolute XDG_CACHE_HOME; empty or relative values fall through."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name, value in (("DEQ_OPT_CACHE", own), ("XDG_CACHE_HOME", xdg)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value.format(tmp=tmp_path))
    assert cache_dir() == Path(expected.format(tmp=tmp_path, home=tmp_path / "home"))


def test_labels_land_in_xdg_cache_readable_under_the_umask(tmp_path, monkeypatch) -> None:
    """With only XDG_CACHE_HOME set the labels go to ``$XDG_CACHE_HOME/deq-opt``, mode 0o644 under umask 022
    (not mkstemp's 0o600), with no temporary file left beside them."""
    monkeypatch.delenv("DEQ_OPT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    previous = os.umask(0o022)
    try:
        label(*TINY, 3, 0, workers=1)
    finally:
        os.umask(previous)
    files = list((tmp_path / "xdg" / "deq-opt").iterdir())
    assert [f.suffix for f in files] == [".npz"] and files[0].name.startswith("random_lp-")
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o644


def test_unusable_cache_location_is_a_config_error(tmp_path, monkeypatch) -> None:
    """A cache path that is a file fails before any labelling, naming the path and DEQ_OPT_CACHE."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("DEQ_OPT_CACHE", str(blocker / "cache"))
    with pytest.raises(ConfigError, match=r"label cache .*file/cache.*DEQ_OPT_CACHE"):
        label(*TINY, 3, 0, workers=1)
