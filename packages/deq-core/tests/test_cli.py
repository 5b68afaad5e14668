"""The ``deq`` CLI end to end with the toy domain (tests/toydomain), found through patched entry points."""

import importlib.metadata
import importlib.util
import json
import re

import pytest

from deq_core import cli, domains
from deq_core.analysis import validate_report

INSTALLED = [b for b in ("torch", "jax") if importlib.util.find_spec(b) is not None]


def test_list_shows_toy_and_broken(toy_entry_points, capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "toy: toy linear inverse problems" in out
    assert "sensing" in out and "deblur" in out
    assert "broken: BROKEN (deq_toydomain.no_such_module:domain: ModuleNotFoundError" in out


@pytest.mark.parametrize("backend", INSTALLED)
def test_run_toy_quick_writes_valid_report_and_plot(toy_entry_points, tmp_path, capsys, backend):
    code = cli.main(["run", "toy", "--quick", "--backend", backend, "--out", str(tmp_path), "--seed", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads((tmp_path / "report.json").read_text())
    validate_report(report)
    assert (report["domain"], report["task"], report["backend"], report["device"]) == (
        "toy",
        "sensing",
        backend,
        "cpu",
    )
    assert report["iterations"] == [1, 4, 16]
    assert report["config"]["train_steps"] == 40
    assert 0 < report["params"]["explicit"] <= report["params"]["implicit"]
    implicit = report["quality"]["implicit"]
    assert all(v is not None and v > 0 for v in implicit)
    assert implicit[-1] < implicit[0]  # more iterations help a trained DEQ
    assert implicit[-1] < report["quality"]["baselines"]["least_squares"]["value"]
    assert all(v is not None and v > 0 for v in report["lipschitz"]["local"])
    assert (tmp_path / "scaling.png").read_bytes()[:4] == b"\x89PNG"
    assert re.search(r"^implicit\s+16\s", captured.out, re.M) and "least_squares" in captured.out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "nope"], r"deq: error: unknown domain 'nope'; valid domains: ([a-z]+, )*toy(, [a-z]+)*\n"),
        (["run", "toy", "--task", "x"], r"deq: error: unknown task 'x'; valid tasks: sensing, deblur\n"),
        (
            ["run", "toy", "--backend", "mxnet"],
            r"deq: error: unknown backend 'mxnet'; valid backends: torch, jax\n",
        ),
        (["run", "toy", "--device", "tpu"], r"deq: error: unknown device 'tpu'; valid devices: cpu, cuda\n"),
    ],
)
def test_unknown_names_give_one_line_errors(toy_entry_points, capsys, argv, message):
    """One line on stderr naming the bad value and the valid ones (other installed domains may be listed)."""
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert re.fullmatch(message, captured.err), captured.err
    assert captured.out == ""


def test_bad_out_seed_and_smoke_flag_are_one_line_errors_before_training(
    toy_entry_points, capsys, tmp_path, monkeypatch
):
    """``--out`` naming a file or a path under a file, ``--seed -1`` and ``DEQ_SMOKE=yes`` fail at once."""
    afile = tmp_path / "report.txt"
    afile.write_text("not a folder")
    cases = [
        (["--out", str(afile)], f"--out {afile} is a file; give a folder"),
        (["--out", str(afile / "sub")], f"--out {afile / 'sub'} cannot be written"),
        (["--seed", "-1", "--out", str(tmp_path / "r")], "--seed must be between 0 and 4294967295, got -1"),
        (["--seed", str(2**32), "--out", str(tmp_path / "r")], "--seed must be between 0 and 4294967295"),
    ]
    for extra, message in cases:
        assert cli.main(["run", "toy", "--quick", *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"deq: error: {message}") and err.count("\n") == 1, err
    monkeypatch.setenv("DEQ_SMOKE", "yes")
    assert cli.main(["run", "toy", "--quick", "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == "deq: error: DEQ_SMOKE must be 0 or 1, got 'yes'\n"
    assert not (tmp_path / "r" / "report.json").exists()


def test_help_names_only_existing_commands(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "{list,run,predict}" in out and "plot" not in out


def test_missing_backend_is_one_line_error(toy_entry_points, capsys):
    missing = [b for b in ("torch", "jax") if b not in INSTALLED]
    if not missing:
        pytest.skip("both backends are installed here")
    assert cli.main(["run", "toy", "--backend", missing[0]]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"deq: error: backend '{missing[0]}' is not installed here") and err.count("\n") == 1
    )


def test_broken_plugin_run_is_one_line_error(toy_entry_points, capsys):
    assert cli.main(["run", "broken"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("deq: error: domain 'broken' is installed but failed to load") and err.count("\n") == 1
    )


def test_domain_dataclass_checks_its_fields():
    with pytest.raises(ValueError, match="tasks must be a non-empty dict"):
        domains.Domain(name="x", tasks={}, default_config=dict, run=dict)
    with pytest.raises(ValueError, match="backends must be a non-empty subset"):
        domains.Domain(name="x", tasks={"t": "d"}, default_config=dict, run=dict, backends=("mxnet",))
    assert isinstance(
        domains.Domain(name="x", tasks={"t": "d"}, default_config=dict, run=dict), domains.DomainPlugin
    )


def test_smoke_flag(monkeypatch):
    monkeypatch.setenv("DEQ_SMOKE", "1")
    assert domains.smoke()
    monkeypatch.setenv("DEQ_SMOKE", "yes")
    with pytest.raises(ValueError, match="DEQ_SMOKE must be 0 or 1"):
        domains.smoke()
