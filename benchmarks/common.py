"""What every benchmark section shares: the table row, the targets, sizes, timing and tiny inputs."""
from __future__ import annotations

import os
import platform
import subprocess
import time
from datetime import datetime
from pathlib import Path
from statistics import median  # noqa: F401 - the sections import it from here with the helpers
from typing import NamedTuple

from glyphlab import usable_cores

ROOT = Path(__file__).resolve().parents[1]
RUN_PY = ROOT / "run.py"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
IMAGE_SIZE, N_CLASSES = 32, 24  # the default runes set
HEAVY_MODULES = ("torch", "pytorch_lightning", "lightning", "mlflow")

# The targets on a 2-core CPU: (comparison, bound, how the bound is written).
TARGETS = {
    "lightning_cnn": (">=", 0.9, "{:g}×"),
    "flops_cnn": (">=", 0.40, "{:.0%}"),
    "cfg_job_s": ("<=", 1.0, "{:g} s"),
    "synth_per_core": (">=", 5000, "{:,} img/s"),
    "sweep_overhead": ("<=", 1.25, "{:g}×"),   # a sequential sweep's wall / the sum of its jobs' fits
    "e2e_overhead": ("<=", 1.8, "{:g}×"),      # a lone default run's wall / its fit
    "e2e_s": ("<=", 60.0, "{:g} s"),
    "e2e_accuracy": (">=", 0.98, "{:g}"),
}

# Sizes for a full run; --quick uses QUICK. Tests pass tiny values to the section functions.
FULL = dict(repeats=3, n_images=4096, epochs=3, steps=30, startup_repeats=5, synth_samples=200,
            sweep_args=("model=cnn,sklearn_mlp", "seed=0,1,2"), sweep_repeats=2, e2e_repeats=2,
            compile=True, precision_seeds=(0, 1, 2), sklearn_epochs=10)
QUICK = dict(repeats=1, n_images=1024, epochs=2, steps=8, startup_repeats=2, synth_samples=50,
             sweep_args=("model=cnn", "seed=0,1", "trainer.max_epochs=1", "data.samples_per_class=60"),
             sweep_repeats=1, e2e_repeats=1, compile=False, precision_seeds=(), sklearn_epochs=2)


class Row(NamedTuple):
    """One line of the table; ``value`` is already formatted, ``verdict`` says how it meets its target."""

    section: str
    figure: str
    value: str
    target: str = "–"
    verdict: str = "–"
    detail: str = ""
    load: str = ""


def load_average() -> float:
    """1-minute load average (0 where the OS has none): above the core count, timings are shared."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def machine() -> dict:
    """What the figures were measured on."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return dict(cores=usable_cores(), cpu=cpu, system=f"{platform.system()} {platform.release()}",
                python=platform.python_version(), torch=torch.__version__, threads=torch.get_num_threads(),
                load=load_average(), date=datetime.now().strftime("%Y-%m-%d %H:%M"),
                omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "unset"),
                dont_write_bytecode=bool(os.environ.get("PYTHONDONTWRITEBYTECODE")))


def judge(key: str, value: float) -> tuple[str, str]:
    """(target text, verdict text) for ``value`` against ``TARGETS[key]``; a miss says by how much."""
    op, bound, fmt = TARGETS[key]
    target = f"{'≥' if op == '>=' else '≤'} {fmt.format(bound)}"
    met = value >= bound if op == ">=" else value <= bound
    if met:
        return target, "met"
    short = (bound - value) / bound if op == ">=" else (value - bound) / bound
    return target, f"**missed** by {short:.0%}"


def spread(values, unit: str = "") -> str:
    """How many repeats and their range, so a reader sees how noisy a median is."""
    if len(values) == 1:
        return "1 repeat"
    return f"median of {len(values)} repeats, range {min(values):.3g}–{max(values):.3g}{unit}"


def compose(overrides=()):
    """The config ``python run.py <overrides>`` gets (real Hydra composition, no job started)."""
    from hydra import compose as hydra_compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


def glyph_tensors(n: int, image_size: int = IMAGE_SIZE, n_classes: int = N_CLASSES, seed: int = 0):
    """Random uint8 images ``[n, image_size, image_size]`` and int64 labels ``[n]``: the work of a
    training step does not depend on the pixels, so the benchmarks need no data set."""
    import torch

    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, image_size, image_size), dtype=torch.uint8, generator=g)
    return images, torch.randint(0, n_classes, (n,), generator=g)


def build_net(cfg, image_size: int = IMAGE_SIZE, n_classes: int = N_CLASSES, seed: int = 0):
    """The model config's nn.Module and optimizer factory, initialised from ``seed``."""
    import torch
    from hydra.utils import instantiate

    torch.manual_seed(seed)
    net = instantiate(cfg.model.net, image_size=image_size, n_classes=n_classes, n_positions=1)
    return net, instantiate(cfg.model.optimizer)


def quiet_lightning() -> None:
    import logging
    import warnings

    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    warnings.filterwarnings("ignore", module="lightning_fabric")


def steps_rate(cfg, steps: int = 30, batch_size: int | None = None, nchw: bool = False,
               compiled: bool = False, bf16: bool = False, cpu_rates: list | None = None) -> float:
    """img/s of ``steps`` raw-loop training steps after 3 warm-up steps, the input already in
    float (the step alone is timed). ``nchw``: conv weights back in contiguous NCHW memory (the
    CNN is built channels_last); ``compiled``: the net under ``torch.compile``; ``bf16``: forward
    and loss under CPU bf16 autocast, as Lightning's ``precision=bf16-mixed`` runs them.
    ``cpu_rates`` (when given) receives the same steps' images per CPU-second of this process."""
    import torch
    from torch.nn import functional as F

    from glyphlab.models.lit import to_input

    batch_size = batch_size or cfg.model.batch_size
    images, labels = glyph_tensors(batch_size * (steps + 3))
    net, optimizer = build_net(cfg)
    if nchw:
        net = net.to(memory_format=torch.contiguous_format)
    opt = optimizer(net.parameters())
    step_net = torch.compile(net) if compiled else net
    net.train()
    x_all = to_input(images)
    started = None
    for i in range(steps + 3):
        if i == 3:
            started, cpu = time.perf_counter(), time.process_time()
        x, y = x_all[i * batch_size:(i + 1) * batch_size], labels[i * batch_size:(i + 1) * batch_size]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(step_net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if cpu_rates is not None:
        cpu_rates.append(steps * batch_size / (time.process_time() - cpu))
    return steps * batch_size / (time.perf_counter() - started)


def bench_env(workdir: Path, cache: Path | None = None) -> dict:
    """Environment of a benchmarked run: its own MLflow store and data cache under ``workdir``."""
    return dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}",
                GLYPHLAB_CACHE=str(cache or workdir / "cache"), PYTHONUNBUFFERED="1", HYDRA_FULL_ERROR="1")


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes: on a loaded machine the CPU a
    start-up costs is steadier than its wall time."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd, env=None, cwd=ROOT, timeout: float = 3600) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run ``cmd``; returns (wall seconds, CPU seconds of it and its children, the process)."""
    cpu = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - started, _children_cpu() - cpu, proc


def container(node) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True)
