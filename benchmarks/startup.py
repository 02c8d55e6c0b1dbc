"""Section startup: `run.py --cfg job` wall time and imports; process start → first training step."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import HEAVY_MODULES, ROOT, RUN_PY, Row, _children_cpu, bench_env, judge, median, spread, timed

# The run stamps its own phases (glyphlab.phases, switched on by GLYPHLAB_PHASES): run() entered,
# data set ready, fit started, first training step. This launcher stamps "python_up", the moment
# the interpreter runs user code, then runs run.py as `python run.py` would.
LAUNCH = ("import runpy, sys; from glyphlab import phases; phases.mark('python_up'); "
          "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
PHASES = ("python_up", "run_start", "data_ready", "fit_start", "first_step")
WATCHED = ("torch", "pytorch_lightning", "lightning", "mlflow", "kornia", "sklearn", "matplotlib")


def marked_run(args, workdir: Path, env: dict | None = None, stop_at_first_step: bool = True,
               timeout: float = 900) -> dict:
    """Run ``python run.py ARGS`` with its phases stamped; returns seconds since the process was
    started (``python_up``, ``run_start``, ``data_ready``, ``fit_start``, ``first_step``, ``exit``),
    ``cpu`` (CPU seconds the process used) and ``modules``: which heavy packages were imported by its
    last stamp. ``stop_at_first_step``: the process is killed once it stamps its first training step."""
    out = workdir / f"phases-{time.time_ns()}.jsonl"
    env = dict(env or bench_env(workdir), GLYPHLAB_PHASES=str(out))
    cpu = _children_cpu()
    started, clock = time.time(), time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, str(RUN_PY), *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    marks = {}
    while proc.poll() is None and time.perf_counter() - clock < timeout:
        marks = _read(out)
        if stop_at_first_step and "first_step" in marks:
            proc.kill()
            break
        time.sleep(0.05)
    else:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.communicate()[1]
    seconds = time.perf_counter() - clock
    marks = _read(out)
    if not all(p in marks for p in PHASES) or (proc.returncode != 0 and "first_step" not in marks):
        raise RuntimeError(f"run.py {' '.join(args)} exited {proc.returncode} after phases {list(marks)}:\n"
                           f"{stderr[-2000:]}")
    last = max(marks.values(), key=lambda m: m["time"])
    result = {phase: m["time"] - started for phase, m in marks.items()}
    result.update(exit=seconds, cpu=_children_cpu() - cpu, modules=[m for m in WATCHED if m in last["modules"]])
    return result


def _read(path: Path) -> dict:
    """The phases stamped so far: ``{phase: {"time", "modules"}}`` (a line being written is skipped)."""
    marks = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            marks[record["phase"]] = record
    return marks


def imported_modules(args) -> set[str]:
    """Top-level packages a ``python run.py ARGS`` process imports (from ``-X importtime``)."""
    *_, proc = timed([sys.executable, "-X", "importtime", str(RUN_PY), *args])
    return {m.group(1).split(".")[0] for m in re.finditer(r"^import time:.*\|\s*(\S+)\s*$", proc.stderr, re.M)}


def bench_startup(repeats: int = 5, workdir: Path | None = None, first_step: bool = True) -> list[Row]:
    """Section 3: ``--cfg job`` wall time and imports; process start → first training step."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(workdir or tmp)
        env = bench_env(work)
        # The floor: an empty Hydra app printing its (empty) config.
        (work / "empty_app.py").write_text('import hydra\n\n\n@hydra.main(version_base="1.3", config_path=None)\n'
                                           'def main(cfg):\n    pass\n\n\nmain()\n')
        base = [sys.executable, "-c", "pass"]
        hydra_only = [sys.executable, str(work / "empty_app.py"), "--cfg", "job", f"hydra.run.dir={work / 'cfg'}"]
        cfg_job = [sys.executable, str(RUN_PY), "--cfg", "job", f"hydra.run.dir={work / 'cfg'}"]
        times = {"python": [], "hydra": [], "cfg": [], "hydra_cpu": [], "cfg_cpu": []}
        for _ in range(repeats):
            times["python"].append(timed(base, env)[0])
            seconds, cpu, _ = timed(hydra_only, env)
            times["hydra"].append(seconds)
            times["hydra_cpu"].append(cpu)
            seconds, cpu, proc = timed(cfg_job, env)
            times["cfg_cpu"].append(cpu)
            if proc.returncode != 0:
                raise RuntimeError(f"run.py --cfg job failed:\n{proc.stderr[-2000:]}")
            times["cfg"].append(seconds)
        cfg_s = median(times["cfg"])
        target, verdict = judge("cfg_job_s", cfg_s)
        rows.append(Row("startup", "`python run.py --cfg job`, wall", f"{cfg_s:.2f} s", target, verdict,
                        f"{median(times['cfg_cpu']):.2f} CPU-s; an empty Hydra app's `--cfg job` takes "
                        f"{median(times['hydra']):.2f} s, {median(times['hydra_cpu']):.2f} CPU-s "
                        f"(`python -c pass` {median(times['python']):.2f} s); "
                        f"{spread(times['cfg'], ' s')}"))
        for args in (["--cfg", "job"], ["--help"]):
            heavy = sorted(imported_modules([*args, f"hydra.run.dir={work / 'cfg'}"]) & set(HEAVY_MODULES))
            rows.append(Row("startup", f"`run.py {' '.join(args)}` imports torch / Lightning / MLflow",
                            ", ".join(heavy) or "none", "none", "met" if not heavy else "**missed**",
                            "python -X importtime"))
        if not first_step:
            return rows
        for model, extra in (("sklearn_mlp", ["model.max_epochs=1"]), ("cnn", ["trainer.max_epochs=1"])):
            args = [f"model={model}", "data=runes", *extra, "trainer.enable_progress_bar=false",
                    f"hydra.run.dir={work / model}"]
            cold = marked_run(args, work, env)  # first ever: builds the data set, creates the MLflow store
            warm = [marked_run(args, work, env) for _ in range(max(1, repeats - 2))]
            phases = {k: median([w[k] for w in warm]) for k in ("python_up", "run_start", "data_ready",
                                                                  "fit_start", "first_step")}
            rows.append(Row("startup", f"{model}: process start → first training step",
                            f"{phases['first_step']:.1f} s",
                            detail=f"interpreter {phases['python_up']:.1f} s, + Hydra compose → run() "
                                   f"{phases['run_start']:.1f} s, + MLflow run + data (cached) "
                                   f"{phases['data_ready']:.1f} s, + augment/grid/model build → fit "
                                   f"{phases['fit_start']:.1f} s, → first step {phases['first_step']:.1f} s; "
                                   f"{median([w['cpu'] for w in warm]):.1f} CPU-s; "
                                   f"cold (data built, store created) {cold['first_step']:.1f} s; "
                                   f"warm runs: {spread([w['first_step'] for w in warm], ' s')}; "
                                   f"imported by then: {', '.join(warm[0]['modules'])}"))
            if model == "sklearn_mlp":
                lightning = sorted({"pytorch_lightning", "lightning"} & set(warm[0]["modules"]))
                rows.append(Row("startup", "sklearn_mlp run imports Lightning", ", ".join(lightning) or "no",
                                "no", "met" if not lightning else "**missed**",
                                f"torch {'imported' if 'torch' in warm[0]['modules'] else 'not imported'}"))
    return rows
