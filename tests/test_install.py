"""`pip install .` (not editable): the wheel holds the code and conf/, and its `glyphlab` command works
from an empty folder, reading the packaged configs and keeping its MLflow store in ./mlruns/.

The wheel is built offline from a copy of the checkout and installed without dependencies into a
fresh venv that sees this venv's packages through a .pth file (no network, a few seconds).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers import ROOT, all_runs, cli

TINY_INSTALLED = ["data.samples_per_class=12", "data.image_size=16", "model.max_epochs=2", "tracking.log_model=false"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("checkout")
    # A copy: building in place would leave build/ and egg-info in the working tree.
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("src", "conf"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                        "-q", "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    (whl,) = out.glob("glyphlab-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A new venv with the wheel installed; every dependency comes from this venv's site-packages."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # Plain paths, not site dirs: this venv's own .pth files (its editable glyphlab) stay unread.
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib"),
                          *(p for p in sys.path if Path(p).name in ("site-packages", "dist-packages"))])
    Path(site, "_deps_from_test_venv.pth").write_text("\n".join(ours) + "\n")
    p = subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return root


@pytest.mark.slow
def test_wheel_holds_every_module_and_config(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT / "src").as_posix() for p in (ROOT / "src").rglob("*.py")}  # hydra_plugins too
    configs = {f"glyphlab/conf/{p.relative_to(ROOT / 'conf').as_posix()}" for p in (ROOT / "conf").rglob("*.yaml")}
    assert modules - names == set() and configs - names == set()
    assert {"glyphlab/draw.html", "glyphlab/collect.html"} <= names
    # the fonts glyphlab ships, with their licence (every machine draws the same kana prototypes)
    bundled = {f"glyphlab/data/sources/bundled/{p.name}" for p in (ROOT / "src/glyphlab/data/sources/bundled").iterdir()}
    assert {"KleeOne-Regular-kana.ttf", "KleeOne-OFL.txt"} <= {p.rsplit("/", 1)[1] for p in bundled}
    assert bundled <= names
    entry_points = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}"
                                               ".dist-info/entry_points.txt").decode()
    assert "glyphlab = glyphlab.cli:entry" in entry_points


@pytest.mark.slow
def test_installed_command_runs_from_an_empty_folder(venv, tmp_path):
    work = tmp_path / "somewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(GLYPHLAB_CACHE=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    glyphlab = str(venv / "bin" / "glyphlab")

    p = subprocess.run([glyphlab, "data=runes", "model=sklearn_mlp", *TINY_INSTALLED], cwd=work, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    store = work / "mlruns" / "mlflow.db"
    assert f"sqlite:///{store}" in p.stdout and "default store: ./mlruns/mlflow.db of the current folder" in p.stdout
    _, runs = all_runs(f"sqlite:///{store}")
    assert [(r.info.status, r.data.tags["model"]) for r in runs] == [("FINISHED", "sklearn_mlp")]
    # the configs came from inside the installed package, not from a checkout
    (hydra_yaml,) = work.glob("outputs/*/*/.hydra/hydra.yaml")
    sources = OmegaConf.load(hydra_yaml).hydra.runtime.config_sources
    assert {"path": "glyphlab.conf", "schema": "pkg", "provider": "main"} in sources
    run_log = (hydra_yaml.parents[1] / "run.log").read_text(encoding="utf-8")
    assert "[glyphlab.experiment][INFO] - model sklearn_mlp  data runes" in run_log  # the summary, logged
    assert str(venv) in subprocess.run([str(venv / "bin" / "python"), "-c", "import glyphlab; print(glyphlab.__file__)"],
                                       capture_output=True, text=True, cwd=work).stdout

    p = subprocess.run([glyphlab, "--help"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "glyphlab model=cnn data=runes" in p.stdout and "model: cnn" in p.stdout

    # a subcommand: glyphlab compare finds the run in the same default store and reports into ./experiments/
    p = subprocess.run([glyphlab, "compare", "--experiment", "glyphlab"], cwd=work, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (work / "experiments" / "glyphlab" / "report.md").exists() and "sklearn_mlp" in p.stdout


@pytest.mark.slow
def test_help_is_glyphlabs_own():
    p = cli("--help")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "Powered by Hydra" not in p.stdout and "Examples:" in p.stdout
    assert "model: cnn, " in p.stdout and "hparams_search: optuna" in p.stdout   # the groups, from conf/
    assert 'eval "$(glyphlab -sc install=bash)"' in p.stdout  # shell completion, the literal command
    p = cli("-sc", "install=bash")
    assert p.returncode == 0 and "complete -o nospace -o default -F hydra_bash_completion" in p.stdout


def test_subcommands_dispatch_to_their_modules(capsys):
    from glyphlab import cli

    for command in ("compare", "predict", "draw"):
        with pytest.raises(SystemExit) as e:
            cli.main([command, "--help"])
        assert e.value.code == 0
        assert "--tracking-uri" in capsys.readouterr().out
    assert cli.config_path() == str(ROOT / "conf")  # in a checkout: its conf/, edits seen at once


def _declared() -> dict[str, str]:
    """pyproject's requirements, base and extras: normalised name → requirement."""
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    return {_norm(re.match(r"[A-Za-z0-9_.\-]+", r).group(0)): r for r in reqs}


def _norm(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_package_imported_in_src_is_declared():
    import ast
    import importlib.metadata

    owners = importlib.metadata.packages_distributions()
    declared = _declared()
    missing = {}
    for path in (ROOT / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("glyphlab", "__future__"):
                    continue
                if top == "hydra_plugins":  # a plugin package: its own distribution (glyphlab's own: none)
                    sub = name.split(".")[1] if "." in name else ""
                    if sub.startswith("glyphlab_") or not sub:
                        continue
                    dists = [sub]
                else:
                    dists = owners.get(top, [top])
                if not any(_norm(d) in declared for d in dists):
                    missing.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    assert not missing, f"imported in src/ but not in pyproject.toml: {missing}"


def test_floors_match_what_the_code_calls():
    from packaging.requirements import Requirement
    from packaging.version import Version

    def floor(name):
        specs = Requirement(_declared()[name]).specifier
        return max((Version(s.version) for s in specs if s.operator == ">="), default=Version("0"))

    serving = (ROOT / "src" / "glyphlab" / "serving.py").read_text()
    training = (ROOT / "src" / "glyphlab" / "models" / "training.py").read_text()
    if "log_model(name=" in serving:  # the name= argument (and logged models) came with MLflow 3
        assert floor("mlflow") >= Version("3.0")
    if "ckpt_path=ckpt_path, weights_only=" in training:  # Trainer.fit(weights_only=...) came with Lightning 2.6
        assert floor("pytorch-lightning") >= Version("2.6")
    assert floor("optuna") >= Version("4.0")  # the sweeper's JournalFileBackend and Optuna 4 API
    assert "hydra-optuna-sweeper" not in _declared()  # it pins optuna<3
