"""Nox sessions for the deq monorepo: tests per package and backend, bare-core check, lint, docs, build.

`nox` runs the default sessions (tests, core_bare, lint); CI runs
`nox -s tests integration core_bare install lint docs build`.
Packages are discovered as `packages/*/pyproject.toml`. Tests share ONE virtualenv per backend
(`.nox/env-torch`, `.nox/env-jax`) holding every package editable with that backend's extra; torch and jax
never share a venv. A backend venv is reinstalled only when a stamp (hash of every package's pyproject.toml,
the shared constraints and test requirements) changes, so a second run starts testing at once.
"""

from __future__ import annotations

import email.message
import email.parser
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import nox
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "venv"

ROOT = Path(__file__).resolve().parent
PACKAGES_DIR = ROOT / "packages"
NOX_DIR = ROOT / ".nox"
JUNIT_DIR = NOX_DIR / "junit"
DIST_DIR = ROOT / "dist"
CONSTRAINTS = ROOT / "shared" / "constraints.txt"
TEST_REQUIREMENTS = ROOT / "shared" / "test-requirements.txt"
CORE = "deq-core"
TOY_DOMAIN = PACKAGES_DIR / "deq-core" / "tests" / "toydomain"
BACKENDS = ("torch", "jax")
BACKEND_MODULES = {"torch", "jax", "jaxlib", "equinox"}


def discover_packages() -> list[str]:
    """Names of the package folders under packages/ that hold a pyproject.toml, sorted."""
    return sorted(path.parent.name for path in PACKAGES_DIR.glob("*/pyproject.toml"))


PACKAGES = discover_packages()


def rel(path: Path) -> str:
    """A path relative to the repository root, for short command lines and logs."""
    return os.path.relpath(path, ROOT)


def read_pyproject(package: str) -> dict:
    """The parsed pyproject.toml of one package, with the file named in any parse error."""
    path = PACKAGES_DIR / package / "pyproject.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RuntimeError(f"{rel(path)}: invalid TOML: {exc}") from exc


def editable_spec(session: nox.Session, package: str, backend: str) -> str:
    """`packages/<name>[<backend>,test]` for pip -e, naming only the extras the package declares."""
    declared = read_pyproject(package).get("project", {}).get("optional-dependencies", {})
    extras = [extra for extra in (backend, "test") if extra in declared]
    if backend not in declared:
        session.warn(f"{package} declares no '{backend}' extra; installing it without one")
    suffix = f"[{','.join(extras)}]" if extras else ""
    return f"{rel(PACKAGES_DIR / package)}{suffix}"


def env_stamp(install_args: list[str]) -> str:
    """Hash of what decides a backend venv's contents: python, pip arguments and every input file."""
    digest = hashlib.sha256()
    digest.update(sys.version.encode())
    digest.update("\0".join(install_args).encode())
    pyprojects = [*(PACKAGES_DIR / p / "pyproject.toml" for p in PACKAGES), TOY_DOMAIN / "pyproject.toml"]
    for path in [CONSTRAINTS, TEST_REQUIREMENTS, *pyprojects]:
        digest.update(rel(path).encode())
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    return digest.hexdigest()


def ensure_backend_env(session: nox.Session, backend: str) -> str:
    """Create `.nox/env-<backend>` if missing and (re)install all packages when the stamp changed.

    Returns the path of the venv's python. A file lock keeps concurrent nox runs in one checkout from
    installing into the same venv at once.
    """
    envdir = NOX_DIR / f"env-{backend}"
    python = envdir / "bin" / "python"
    stamp_file = envdir / "deq-stamp.txt"
    install_args = ["-c", rel(CONSTRAINTS), "-r", rel(TEST_REQUIREMENTS)]
    for package in PACKAGES:
        install_args += ["-e", editable_spec(session, package, backend)]
    install_args += ["-e", f"{rel(TOY_DOMAIN)}[{backend}]"]  # the CLI tests' plugin, a test-only package
    stamp = env_stamp(install_args)
    NOX_DIR.mkdir(exist_ok=True)
    with open(NOX_DIR / f"env-{backend}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp_file.is_file() and stamp_file.read_text().strip() == stamp and python.is_file():
            session.log(f"{rel(envdir)} is up to date")
            return rel(python)
        if not python.is_file():
            shutil.rmtree(envdir, ignore_errors=True)
            session.run(sys.executable, "-m", "venv", rel(envdir), external=True)
        stamp_file.unlink(missing_ok=True)
        started = time.monotonic()
        session.run(rel(python), "-m", "pip", "install", "--quiet", *install_args, external=True)
        stamp_file.write_text(stamp + "\n")
        session.log(f"{rel(envdir)} installed in {time.monotonic() - started:.0f} s")
    return rel(python)


# Test processes per package session (each test on one thread); the integration runs pace themselves.
TEST_WORKERS = int(os.environ.get("DEQ_TEST_WORKERS", min(2, os.cpu_count() or 1)))


def test_env(backend: str) -> dict[str, str]:
    """Environment for a test run: one thread per process, DEQ_BACKEND naming the backend under test.

    JAX keeps its compiled programs in `.nox/jax-cache` (XLA's persistent cache, keyed by the program and the
    flags), so a program compiled by one session or subprocess loads in a fraction of its compile time in
    the next: the integration runs repeat the domain tests' smoke runs.
    """
    return {
        "OMP_NUM_THREADS": "1",
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false"),
        "DEQ_BACKEND": backend,
        "JAX_COMPILATION_CACHE_DIR": os.environ.get("JAX_COMPILATION_CACHE_DIR", str(NOX_DIR / "jax-cache")),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.2",
    }


def run_pytest(session: nox.Session, backend: str, target: Path, junit_name: str, workers: int = 0) -> None:
    """Run pytest on `target` in the backend venv; exit 5 (no tests collected) passes with a warning.

    `workers` > 1 spreads the test files over that many processes (pytest-xdist): every test runs on one
    thread, so one process leaves the machine's other cores idle.
    """
    python = ensure_backend_env(session, backend)
    spread = ["-n", str(workers), "--dist", "loadfile"] if workers > 1 else []
    JUNIT_DIR.mkdir(parents=True, exist_ok=True)
    junit = JUNIT_DIR / f"{junit_name}.xml"
    junit.unlink(missing_ok=True)
    session.run(
        python,
        "-m",
        "pytest",
        rel(target),
        f"--junitxml={rel(junit)}",
        *spread,
        *session.posargs,
        env=test_env(backend),
        external=True,
        success_codes=[0, 5],
    )
    collected = junit.is_file() and any(int(s.get("tests", "0")) for s in ET.parse(junit).iter("testsuite"))
    if not collected:
        session.warn(f"no tests collected in {rel(target)} with backend {backend}")


@nox.session(venv_backend="none")
@nox.parametrize("backend", BACKENDS, ids=list(BACKENDS))
@nox.parametrize("package", PACKAGES, ids=PACKAGES)
def tests(session: nox.Session, backend: str, package: str) -> None:
    """Run one package's tests in the shared venv of one backend."""
    tests_dir = PACKAGES_DIR / package / "tests"
    if not tests_dir.is_dir():
        session.skip(f"{rel(tests_dir)} does not exist")
    run_pytest(session, backend, tests_dir, f"{package}-{backend}", workers=TEST_WORKERS)


@nox.session(venv_backend="none", default=False)
@nox.parametrize("backend", BACKENDS, ids=list(BACKENDS))
def integration(session: nox.Session, backend: str) -> None:
    """Run the end-to-end tests in integration_tests/ in the shared venv of one backend."""
    target = ROOT / "integration_tests"
    if not target.is_dir():
        session.skip("integration_tests/ does not exist")
    run_pytest(session, backend, target, f"integration-{backend}")


# Benchmarks run by `nox -s bench`: (script, arguments) per backend, each writing results/<name>.{json,md}.
# Core rows compare solvers with peer libraries; operator rows compare each domain's operators with the
# classical tool they replace (scikit-image Radon, scikit-fem assembly, OR-Tools PDLP).
OPERATOR_BENCHMARKS = [
    ("packages/deq-imaging/benchmarks/radon_speed.py", ["--out", "results/radon_{backend}"]),
    ("packages/deq-pde/benchmarks/assembly_peers.py", ["--out", "results/assembly_{backend}"]),
    (
        "packages/deq-opt/benchmarks/pdhg_benchmark.py",
        ["--skip-netlib", "--backend", "{backend}", "--out", "results/pdhg_{backend}"],
    ),
]
CORE_BENCHMARKS = {
    "torch": [
        ("packages/deq-core/benchmarks/peers_torch.py", ["--out", "results/peers_torch"]),
        ("packages/deq-core/benchmarks/memory.py", ["--out", "results/memory_torch"]),
    ],
    "jax": [("packages/deq-core/benchmarks/peers_jax.py", ["--out", "results/peers_jax"])],
}


def benchmarks(backend: str) -> list[tuple[str, list[str]]]:
    """The benchmark scripts of ``backend``, with their arguments."""
    operators = [(script, [a.format(backend=backend) for a in args]) for script, args in OPERATOR_BENCHMARKS]
    return CORE_BENCHMARKS[backend] + operators


PEERS = {"torch": ["torchdeq", "scikit-fem"], "jax": ["optimistix", "lineax", "jaxopt", "scikit-fem"]}


@nox.session(default=False)
@nox.parametrize("backend", BACKENDS, ids=list(BACKENDS))
def bench(session: nox.Session, backend: str) -> None:
    """Run the benchmarks against peer libraries; write results/bench-<backend>.{json,md} (not in CI).

    Arguments after ``--`` go to the solver benchmarks (``peers_*.py``), e.g. ``-- --repeats 3 --quick``.
    """
    editables = [arg for p in PACKAGES for arg in ("-e", editable_spec(session, p, backend))]
    session.install("-c", rel(CONSTRAINTS), *editables, *PEERS[backend])
    env = {**test_env(backend)}
    (ROOT / "results").mkdir(exist_ok=True)
    outputs = []
    for script, args in benchmarks(backend):
        extra = session.posargs if Path(script).name.startswith("peers_") else []
        session.run("python", script, *args, *extra, env=env)
        outputs.append(ROOT / args[args.index("--out") + 1])
    combined = {"backend": backend, "benchmarks": {}}
    tables = []
    for out in outputs:
        data = json.loads(out.with_suffix(".json").read_text())
        combined["benchmarks"][out.name] = data
        tables.append(f"## {out.name}\n\n" + out.with_suffix(".md").read_text())
    (ROOT / "results" / f"bench-{backend}.json").write_text(json.dumps(combined, indent=2))
    (ROOT / "results" / f"bench-{backend}.md").write_text("\n".join(tables))
    session.log(f"wrote results/bench-{backend}.json and results/bench-{backend}.md")


# Test files that exercise solvers and operators, run on CUDA by `nox -s gpu`.
GPU_TESTS = {
    "torch": [
        "packages/deq-core/tests/test_conformance.py",
        "packages/deq-core/tests/test_torch_specific.py",
        "packages/deq-imaging/tests/test_torch_operators.py",
        "packages/deq-pde/tests/test_torch.py",
        "packages/deq-opt/tests/test_pdhg.py",
    ],
    "jax": [
        "packages/deq-core/tests/test_conformance.py",
        "packages/deq-core/tests/test_jax_specific.py",
        "packages/deq-imaging/tests/test_jax_operators.py",
        "packages/deq-pde/tests/test_jax.py",
        "packages/deq-opt/tests/test_pdhg.py",
    ],
}
CUDA_FRAMEWORK = {"torch": [], "jax": ["jax[cuda12]"]}  # PyPI's Linux torch wheel is the CUDA build


@nox.session(default=False)
@nox.parametrize("backend", BACKENDS, ids=list(BACKENDS))
def gpu(session: nox.Session, backend: str) -> None:
    """Solver and operator tests, then the benchmarks, on CUDA (off by default; needs an NVIDIA GPU).

    Installs the CUDA build of the backend (torch from PyPI, ``jax[cuda12]``), runs ``GPU_TESTS`` with
    ``DEQ_TEST_DEVICE=cuda`` through the ``deq_core.testing.device`` plugin (PyTorch allocates on the GPU by
    default; a run that cannot reach the GPU stops), and writes results/gpu-<backend>-*.{json,md}.
    """
    if shutil.which("nvidia-smi") is None:
        session.skip("no NVIDIA GPU on this machine (nvidia-smi not found)")
    editables = [arg for p in PACKAGES for arg in ("-e", editable_spec(session, p, backend))]
    session.install(
        "-c",
        rel(CONSTRAINTS),
        "-r",
        rel(TEST_REQUIREMENTS),
        *editables,
        *PEERS[backend],
        *CUDA_FRAMEWORK[backend],
    )
    env = {**test_env(backend), "DEQ_TEST_DEVICE": "cuda"}
    session.run("python", "-m", "pytest", "-p", "deq_core.testing.device", *GPU_TESTS[backend], env=env)
    (ROOT / "results").mkdir(exist_ok=True)
    device = ["--device", "cuda"] if backend == "torch" else []  # JAX picks the GPU by itself
    peers = f"packages/deq-core/benchmarks/peers_{backend}.py"
    session.run("python", peers, *device, "--out", f"results/gpu-{backend}-peers", *session.posargs, env=env)
    radon = "packages/deq-imaging/benchmarks/radon_speed.py"
    session.run("python", radon, *device, "--out", f"results/gpu-{backend}-radon", env=env)


BARE_CHECK = f"""
import importlib, importlib.util, pkgutil, sys
import deq_core
backend_modules = {sorted(BACKEND_MODULES)!r}
backend_modules = set(backend_modules)
imported = ["deq_core"]
def walk(package):
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if set(info.name.split(".")) & backend_modules or info.name.startswith("deq_core.testing"):
            continue  # backend subpackages, and the test-support suite (which needs pytest)
        module = importlib.import_module(info.name)
        imported.append(info.name)
        if info.ispkg:
            walk(module)
walk(deq_core)
leaked = sorted(m for m in backend_modules if m in sys.modules)
assert not leaked, f"importing {{imported}} pulled in {{leaked}}"
present = sorted(m for m in backend_modules if importlib.util.find_spec(m) is not None)
assert not present, f"installing deq-core without extras installed {{present}}"
try:
    import torch
except ImportError:
    pass
else:
    raise AssertionError("import torch succeeded in the bare venv")
print(f"bare deq-core OK: imported {{len(imported)}} modules without any of {{sorted(backend_modules)}}")
"""


@nox.session
def core_bare(session: nox.Session) -> None:
    """Install deq-core without extras and check that it imports with neither torch nor jax present."""
    session.install("-c", rel(CONSTRAINTS), rel(PACKAGES_DIR / CORE))
    session.log("python -c BARE_CHECK  # import every non-backend deq_core module; no torch/jax may appear")
    session.run("python", "-c", BARE_CHECK, env={"OMP_NUM_THREADS": "1"}, log=False)


INSTALL_DOMAIN = "deq-imaging"
# In the fresh venv: the shipped deblurring model's card subset (its first test images, blurred with its
# kernel and noise) as 8-bit PNGs in blurred/, their clean images in clean/, the blurred PSNR in psnr.txt.
WRITE_BLURRED = """
import sys
from pathlib import Path
import numpy as np
from PIL import Image
from deq_imaging.evaluation.metrics import mean_scores
from deq_imaging.pretrained import folder, read_card, subset
root = Path(sys.argv[1])
blurred, clean = subset(read_card(folder("deblur", "torch"))["subset"])
for name, images in (("blurred", blurred), ("clean", clean)):
    (root / name).mkdir()
    for i, image in enumerate(images):
        pixels = np.rint(np.clip(image[0], 0, 1) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / name / f"{i:02d}.png")
(root / "psnr.txt").write_text(str(mean_scores(np.clip(blurred, 0, 1), clean)[0]))
"""
# `deq predict` must restore the blurred PNGs by at least this much (dB) over their own PSNR.
MIN_GAIN_DB = 1.0


@nox.session(venv_backend="none", default=False)
def install(session: nox.Session) -> None:
    """The README's install in a fresh venv: deq-core and deq-imaging with torch from the checkout, not
    editable (with the project's pins); then `deq list` shows imaging and `deq predict --model
    pretrained:imaging/deblur` restores a folder of blurred PNGs. Logs the install time."""
    envdir = NOX_DIR / "install-torch"
    shutil.rmtree(envdir, ignore_errors=True)
    session.run(sys.executable, "-m", "venv", rel(envdir), external=True)
    bin_dir = envdir / "bin"
    started = time.monotonic()
    specs = [f"./{rel(PACKAGES_DIR / CORE)}[torch]", f"./{rel(PACKAGES_DIR / INSTALL_DOMAIN)}[torch]"]
    session.run(rel(bin_dir / "pip"), "install", "--quiet", "-c", rel(CONSTRAINTS), *specs, external=True)
    session.log(f"{INSTALL_DOMAIN}[torch] installed in a fresh venv in {time.monotonic() - started:.0f} s")
    env = {"OMP_NUM_THREADS": "1"}
    listing = session.run(rel(bin_dir / "deq"), "list", external=True, silent=True, env=env)
    domain = INSTALL_DOMAIN.removeprefix("deq-")
    if not listing or not any(line.startswith(f"{domain}:") for line in listing.splitlines()):
        session.error(f"`deq list` in the fresh venv does not show {domain}:\n{listing}")
    images = envdir / "images"
    images.mkdir()
    session.run(rel(bin_dir / "python"), "-c", WRITE_BLURRED, str(images), external=True, env=env)
    blurred_psnr = float((images / "psnr.txt").read_text())
    out = envdir / "restored"
    predict = ["predict", "--model", "pretrained:imaging/deblur", "--input", str(images / "blurred")]
    predict += ["--reference", str(images / "clean"), "--out", str(out), "--backend", "torch"]
    session.run(rel(bin_dir / "deq"), *predict, external=True, env=env)
    result = json.loads((out / "predictions.json").read_text())
    restored = sorted(path.name for path in out.glob("[0-9]*.png"))
    names = sorted(path.name for path in (images / "blurred").glob("*.png"))
    if restored != names or len(result["rows"]) != len(names):
        session.error(f"deq predict wrote {restored} and {len(result['rows'])} rows for the inputs {names}")
    psnr = sum(row["psnr"] for row in result["rows"]) / len(result["rows"])
    session.log(f"blurred PNGs {blurred_psnr:.2f} dB -> restored {psnr:.2f} dB")
    if not psnr >= blurred_psnr + MIN_GAIN_DB:
        session.error(f"the pretrained deblurrer gained {psnr - blurred_psnr:.2f} dB < {MIN_GAIN_DB} dB")


# `nox -s lint`, in order; each runs even when an earlier one failed. The backend share comes last: it fails
# until every domain keeps <= 20% of its lines per backend (issue #13) and must not hide the others.
LINT_CHECKS = [
    ("ruff check", ["ruff", "check", "."]),
    ("ruff format", ["ruff", "format", "--check", "."]),
    ("import contracts", ["lint-imports", "--no-cache", "--no-logo"]),
    ("backend share", ["python", "tools/backend_share.py", "--max", "20"]),
]


@nox.session(reuse_venv=True)
def lint(session: nox.Session) -> None:
    """ruff, the import-linter contracts of pyproject.toml, and the domains' per-backend share.

    import-linter reads the sources from every package's ``src/`` (on ``PYTHONPATH``, nothing installed, so
    neither torch nor jax is needed) and the ``backend_free`` contract type from ``tools/``.
    """
    session.install("-c", rel(CONSTRAINTS), "ruff", "import-linter")
    sources = [rel(PACKAGES_DIR / package / "src") for package in PACKAGES]
    env = {"PYTHONPATH": os.pathsep.join(["tools", *sources])}
    failed = []
    for name, command in LINT_CHECKS:
        try:
            session.run(*command, env=env)
        except nox.command.CommandFailed:
            failed.append(name)
    if failed:
        session.error(f"lint failed: {', '.join(failed)}")


@nox.session(reuse_venv=True, default=False)
def docs(session: nox.Session) -> None:
    """Build the mkdocs site with --strict; API pages come from static analysis, no backend installed."""
    session.install("-c", rel(CONSTRAINTS), "mkdocs", "mkdocs-material", "mkdocstrings[python]", "ruff")
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", rel(NOX_DIR / "site"), env={"NO_MKDOCS_2_WARNING": "1"}
    )


def wheel_metadata(wheel: Path) -> email.message.Message:
    """The METADATA of a built wheel, parsed."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))


def check_dists(session: nox.Session, wheels: dict[str, Path]) -> None:
    """Check built wheels: module present, extras torch/jax declared, in-repo requirements satisfiable.

    Every requirement on a package of this repo (deq-core above all) must admit the in-repo version, so that
    the packages at one commit install together.
    """
    metadata = {package: wheel_metadata(wheel) for package, wheel in wheels.items()}
    versions = {canonicalize_name(m["Name"]): Version(m["Version"]) for m in metadata.values()}
    problems = []
    for package, meta in metadata.items():
        module = package.replace("-", "_")
        with zipfile.ZipFile(wheels[package]) as archive:
            if f"{module}/__init__.py" not in archive.namelist():
                problems.append(f"{wheels[package].name}: holds no {module}/__init__.py")
        missing = set(BACKENDS) - set(meta.get_all("Provides-Extra") or [])
        if missing:
            problems.append(f"{package}: no extra named {sorted(missing)} (extras must be 'torch' and 'jax')")
        for line in meta.get_all("Requires-Dist") or []:
            req = Requirement(line)
            name = canonicalize_name(req.name)
            if name in versions and not req.specifier.contains(versions[name], prereleases=True):
                problems.append(f"{package}: requires {line!r} but the repo holds {name} {versions[name]}")
            if name == "torch" and any(spec.operator in ("==", "===") for spec in req.specifier):
                problems.append(f"{package}: pins torch ({line!r}); pins belong in shared/constraints.txt")
    for problem in problems:
        session.warn(problem)
    if problems:
        session.error(f"{len(problems)} problem(s) in the built distributions")
    session.log("metadata OK: " + ", ".join(f"{p} {meta['Version']}" for p, meta in metadata.items()))


@nox.session(reuse_venv=True, default=False)
def build(session: nox.Session) -> None:
    """Build sdist and wheel of every package, twine-check them, and check cross-package requirements."""
    build_requires = sorted(
        {req for p in PACKAGES for req in read_pyproject(p).get("build-system", {}).get("requires", [])}
    )
    session.install("-c", rel(CONSTRAINTS), "build", "twine", *build_requires)
    shutil.rmtree(DIST_DIR, ignore_errors=True)
    wheels = {}
    for package in PACKAGES:
        outdir = DIST_DIR / package
        source = rel(PACKAGES_DIR / package)
        session.run("python", "-m", "build", "--no-isolation", "--outdir", rel(outdir), source)
        found = sorted(outdir.glob("*.whl"))
        if len(found) != 1 or not list(outdir.glob("*.tar.gz")):
            found_names = sorted(os.listdir(outdir))
            session.error(f"{package}: expected a wheel and an sdist in {rel(outdir)}, found {found_names}")
        wheels[package] = found[0]
    session.run("twine", "check", "--strict", *(rel(p) for p in sorted(DIST_DIR.glob("*/*"))))
    check_dists(session, wheels)
