"""Look at glyphlab's runs in the MLflow UI with headless Chromium, the way a user's browser shows them.

    python scripts/check_mlflow_ui.py                     # a tiny run in a temporary store, then the check
    python scripts/check_mlflow_ui.py --store sqlite:////path/to/mlruns/mlflow.db --out /tmp/ui

Starts ``mlflow ui`` on 127.0.0.1 (a free port), opens the experiment twice in a fresh Chromium
profile — at its plain address and at the link glyphlab's summary prints (``…/runs?workflowType=
machine_learning``) — and reports, from the rendered page, which view opened (the GenAI *Overview*
or the training *Runs* table) and what the runs table's Dataset column shows. Screenshots and the
rendered HTML go to ``--out``. Exit 0 when glyphlab's link opens the runs table with the data set of
every run filled in. Needs ``chromium`` (``apt-get install chromium``); no network, no test suite:
it takes a minute.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from html import unescape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY_RUN = ["model=sklearn_mlp", "data.samples_per_class=12", "data.image_size=16", "model.max_epochs=2"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_run(work: Path) -> str:
    """One glyphlab run into a store of its own; returns the store's URI."""
    uri = f"sqlite:///{work / 'mlruns' / 'mlflow.db'}"
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, GLYPHLAB_CACHE=str(work / "cache"))
    p = subprocess.run([sys.executable, str(ROOT / "run.py"), *TINY_RUN, f"hydra.run.dir={work / 'out'}"],
                       env=env, capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"the glyphlab run failed:\n{p.stderr[-2000:]}")
    print("glyphlab's summary:\n  " + "\n  ".join(p.stdout.strip().splitlines()[-6:]))
    return uri


def start_ui(uri: str, port: int) -> subprocess.Popen:
    ui = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                           "--host", "127.0.0.1", "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(240):  # the first start of a UI server takes a while on a busy machine
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return ui
        except OSError:
            time.sleep(0.5)
    stop(ui)
    sys.exit("mlflow ui did not answer /health within 2 minutes")


def stop(ui: subprocess.Popen) -> None:
    with_children = os.getpgid(ui.pid)  # its own session: uvicorn's workers too
    os.killpg(with_children, signal.SIGTERM)
    try:
        ui.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(with_children, signal.SIGKILL)


def render(browser: str, url: str, shot: Path) -> str:
    """The page's DOM after its scripts ran (a fresh profile: nothing remembered from earlier visits)."""
    with tempfile.TemporaryDirectory() as profile:
        common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000",
                  f"--user-data-dir={profile}", "--virtual-time-budget=25000"]
        subprocess.run([*common, f"--screenshot={shot}", url], capture_output=True, timeout=180)
        return subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=180).stdout


def text_of(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def describe(html: str, datasets: dict[str, str]) -> dict:
    text = text_of(html)
    heading = re.search(r"<h[1-3][^>]*>(.*?)</h[1-3]>", html, flags=re.S)
    shown = {name: bool(re.search(rf"{re.escape(name)}\W*\(?{digest[:8]}", text)) for name, digest in datasets.items()}
    return {"heading": text_of(heading.group(1)).strip() if heading else "?",
            "runs table": "Run Name" in text and "Dataset" in text,
            "overview": "Traces" in text and "Overview" in text and "Run Name" not in text,
            "sidebar": "GenAI" if "Judges" in text else "Model training",
            "datasets shown": shown}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", help="an MLflow store with glyphlab runs (default: a tiny run in a temp store)")
    parser.add_argument("--experiment", default="glyphlab")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "glyphlab-ui-check")
    args = parser.parse_args(argv)
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        sys.exit("no chromium on PATH (apt-get install chromium)")
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as work:
        uri = args.store or tiny_run(Path(work))
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name(args.experiment)
        if experiment is None:
            sys.exit(f"no experiment {args.experiment!r} in {uri}")
        runs = [r for r in client.search_runs([experiment.experiment_id]) if "glyphlab.sweep" not in r.data.tags]
        datasets = {d.dataset.name: d.dataset.digest for r in runs for d in r.inputs.dataset_inputs}
        print(f"experiment {experiment.name} ({experiment.experiment_id}): mlflow.experimentKind = "
              f"{experiment.tags.get('mlflow.experimentKind', '(none)')}; {len(runs)} runs; data sets logged: "
              f"{', '.join(f'{n} ({d})' for n, d in datasets.items()) or 'none'}")
        port = free_port()
        ui = start_ui(uri, port)
        try:
            base = f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}"
            pages = {"plain": base, "glyphlab's link": f"{base}/runs?workflowType=machine_learning"}
            seen = {}
            for name, url in pages.items():
                shot = args.out / f"{name.split()[0].strip(chr(39) + 's')}.png"
                html = render(browser, url, shot)
                (shot.with_suffix(".html")).write_text(html, encoding="utf-8")
                seen[name] = describe(html, datasets)
                print(f"{name}: {url}\n  {seen[name]}\n  screenshot {shot}")
        finally:
            stop(ui)
    link = seen["glyphlab's link"]
    ok = link["runs table"] and bool(datasets) and all(link["datasets shown"].values())
    print("OK: glyphlab's link opens the runs table with the Dataset column filled" if ok else
          "NOT OK: see the screenshots")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
