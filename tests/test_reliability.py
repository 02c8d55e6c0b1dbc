"""Bad input, interruptions and failing sweep jobs: one clear line, a non-zero exit, a truthful store."""
import gzip
import re
import signal
import struct
import subprocess
import sys
import time
import zipfile

import pytest
import torch
from PIL import Image

from helpers import (ROOT, TINY, TINY_SKLEARN, all_runs, assert_nothing_running, check_report, cli, compose,
                     draw_folder, free_port, job_lines, main_exit, parent_of, scratch)


def case_missing_root(tmp):
    return ["data=folder", f"data.root={tmp / 'nowhere'}"], "does not exist"


def case_root_is_file(tmp):
    (tmp / "file.txt").write_text("x")
    return ["data=folder", f"data.root={tmp / 'file.txt'}"], "is a file"


def case_empty_root(tmp):
    (tmp / "empty").mkdir()
    return ["data=folder", f"data.root={tmp / 'empty'}"], "no images found"


def case_corrupt_image_error(tmp):
    root = draw_folder(tmp / "d")
    (root / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    return ["data=folder", f"data.root={root}", "data.on_bad_file=error"], "broken.png"


def case_class_without_usable_images(tmp):
    root = draw_folder(tmp / "d")
    (root / "c").mkdir()
    (root / "c" / "broken.png").write_bytes(b"not an image")
    return ["data=folder", f"data.root={root}"], "no usable images"


def case_too_few_for_split(tmp):
    root = draw_folder(tmp / "d", per_class=2)
    return ["data=folder", f"data.root={root}"], "at least 3 samples"


def case_decompression_bomb(tmp):
    root = draw_folder(tmp / "d")
    Image.new("1", (12000, 12000)).save(root / "a" / "bomb.png")  # 144 Mpx, a few KB on disk
    return ["data=folder", f"data.root={root}", "data.on_bad_file=error"], "bomb.png"


def case_zip_slip(tmp):
    with zipfile.ZipFile(tmp / "images_background.zip", "w") as z:
        z.writestr("images_background/Latin/character01/a.png", b"x")
        z.writestr("../../evil.png", b"x")
    return ["data=omniglot", f"data.root={tmp / 'images_background.zip'}"], "unsafe entry"


def case_bad_idx(tmp):
    (tmp / "mnist").mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        with gzip.open(tmp / "mnist" / f"{name}.gz", "wb") as f:
            f.write(struct.pack(">HBB", 1, 8, 1) + b"\0" * 8)  # bad magic
    return ["data=mnist", f"data.root={tmp / 'mnist'}"], "magic"


def case_eval_classes_unknown(tmp):
    draw_folder(tmp / "train", "ab")
    draw_folder(tmp / "eval", "az")
    return (["data=folder", f"data.root={tmp / 'train'}", "eval_data=folder", f"eval_data.root={tmp / 'eval'}"],
            "does not know: z")


def case_unreachable_server(tmp):
    return [f"tracking.uri=http://127.0.0.1:{free_port()}"], "not reachable"


def case_unwritable_store(tmp):
    (tmp / "plain").write_text("x")
    return [f"tracking.uri=sqlite:///{tmp / 'plain' / 'mlflow.db'}"], "not writable"


def case_store_not_a_database(tmp):
    (tmp / "store").mkdir()
    (tmp / "store" / "mlflow.db").write_text("not a database" * 100)
    return [f"tracking.uri=sqlite:///{tmp / 'store' / 'mlflow.db'}"], "file is not a database"


def case_unwritable_cache(tmp):
    (tmp / "plain").write_text("x")
    return [f"cache_dir={tmp / 'plain' / 'cache'}"], "not writable"


def case_negative_epochs(tmp):
    return ["model=cnn", "trainer.max_epochs=-1"], "trainer.max_epochs"


def case_image_size_zero(tmp):
    return ["data.image_size=0"], "image_size"


def case_split_over_one(tmp):
    return ["split.val=1.5"], "split.val"


def case_charset_without_strokes(tmp):
    return ["data=latin", "data.charset='ᚠ'"], "ᚠ"


CASES = [case_missing_root, case_root_is_file, case_empty_root, case_corrupt_image_error,
         case_class_without_usable_images, case_too_few_for_split, case_decompression_bomb, case_zip_slip,
         case_bad_idx, case_eval_classes_unknown, case_unreachable_server, case_unwritable_store, case_store_not_a_database,
         case_unwritable_cache, case_negative_epochs, case_image_size_zero, case_split_over_one,
         case_charset_without_strokes]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__.removeprefix("case_"))
def test_bad_input_gets_one_line_and_exit_2(case, store, tmp_path, capsys):
    overrides, expected = case(tmp_path)
    base = [] if any(o.startswith("model=") for o in overrides) else ["model=sklearn_mlp", "model.max_epochs=2"]
    if not any(o.startswith("data=") for o in overrides):
        base.append("data.samples_per_class=24")  # the default data, runes, made tiny
    code, last = main_exit([*base, "data.image_size=16", *overrides], capsys)
    assert code == 2
    assert last.startswith("glyphlab: error:") and expected in last, last
    runs = assert_nothing_running(store)
    assert all(r.info.status == "FAILED" and r.data.tags.get("error") for r in runs)


@pytest.mark.slow
def test_unknown_option_is_hydras_message(store):
    p = cli("model=resnet")
    assert p.returncode != 0 and "resnet" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.slow
def test_bad_files_are_skipped_and_counted_by_default(store, tmp_path, caplog):
    from glyphlab.experiment import run

    root = draw_folder(tmp_path / "d", per_class=8)
    (root / "a" / "broken.png").write_bytes(b"garbage")
    Image.new("RGBA", (40, 30), (255, 255, 255, 0)).save(root / "b" / "rgba.png")      # mixed modes/sizes
    Image.new("I;16", (25, 25), 65535).save(root / "b" / "sixteen.png")
    run(compose(["model=sklearn_mlp", "model.max_epochs=2", "data=folder", f"data.root={root}", "data.image_size=16"]))
    _, runs = all_runs(store)
    assert runs[0].info.status == "FINISHED"
    assert "broken.png" in caplog.text


@pytest.mark.slow
def test_sigterm_during_training_ends_killed_keeps_checkpoint_and_resumes(store, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["model=cnn", *TINY, "trainer.max_epochs=500", f"hydra.run.dir={out}"]
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], cwd=scratch(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    last = out / "checkpoints" / "last.ckpt"
    try:
        deadline = time.time() + 240
        while not last.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert last.exists(), proc.communicate()[0][-3000:] if proc.poll() is not None else "no checkpoint in time"
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, output[-2000:]  # as the sklearn family (test_sklearn_family)
    _, runs = all_runs(store)
    assert [r.info.status for r in runs] == ["KILLED"]
    assert f"glyphlab: interrupted by SIGTERM; MLflow run {runs[0].info.run_id} ended KILLED" in output
    assert "Traceback" not in output
    assert runs[0].data.metrics["train/loss"] > 0  # what was logged so far is kept
    assert (out / "checkpoints" / "interrupted.ckpt").exists()

    # last.ckpt is rewritten every epoch until the signal lands: resume from however far it got.
    epoch = torch.load(last, map_location="cpu", weights_only=True)["epoch"]
    # (in this process: what the command line adds, exit code and last line, main_exit checks as well)
    if epoch >= 1:
        code, last_line = main_exit(["model=cnn", *TINY, "trainer.max_epochs=1", f"ckpt_path={last}"], capsys)
        assert code == 2 and last_line.startswith("glyphlab: error: ckpt_path"), last_line
        assert "trainer.max_epochs must be larger than" in last_line
    from glyphlab.experiment import main

    main(compose(["model=cnn", *TINY, f"trainer.max_epochs={epoch + 3}", f"ckpt_path={last}"]))
    client, runs = all_runs(store)
    assert runs[0].info.status == "FINISHED"
    resumed = client.get_metric_history(runs[0].info.run_id, "train/loss")
    assert 1 <= len(resumed) <= 3  # only the epochs after the checkpoint were trained

    # A new run in the folder where interrupted.ckpt lies starts from scratch unless told otherwise
    # (Lightning's own on-exception callback would resume from it silently).
    p = cli("model=cnn", *TINY, f"hydra.run.dir={out}")
    assert p.returncode == 0, p.stderr[-3000:]
    client, runs = all_runs(store)
    assert len(client.get_metric_history(runs[0].info.run_id, "train/loss")) == 2  # both epochs of TINY


@pytest.mark.slow
def test_failing_job_does_not_stop_the_sweep(store, tmp_path):
    p = cli("-m", "model=sklearn_mlp", *TINY_SKLEARN, "data.samples_per_class=24,1", "tracking.log_model=false",
            f"hydra.sweep.dir={tmp_path / 'sweep'}")
    _, runs = all_runs(store)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    parent = next(r for r in runs if r.data.tags.get("glyphlab.sweep") == "parent")
    assert sorted(r.info.status for r in children) == ["FAILED", "FINISHED"], p.stderr[-3000:]
    assert parent.data.metrics["sweep/n_failed"] == 1
    assert parent.info.status == "FAILED"
    assert "glyphlab: error:" in p.stderr and "1 of 2 sweep jobs failed" in p.stderr
    assert p.returncode == 1  # the sweep went on, but a script sees it is incomplete


@pytest.mark.slow
def test_eight_parallel_jobs_on_the_sqlite_store(store, tmp_path):
    p = cli("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=8", "model=sklearn_mlp", *TINY_SKLEARN,
            "model.max_epochs=2", "seed=0,1,2,3,4,5,6,7", "tracking.log_model=false",
            f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert p.returncode == 0, p.stderr[-3000:]
    client, runs = all_runs(store)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 8 and all(r.info.status == "FINISHED" for r in children)
    for r in children:
        assert {"test/accuracy", "test/macro_f1", "time/fit_s"} <= set(r.data.metrics)
        assert {"confusion_matrix.png", "confusion_matrix.csv", "config.yaml"} <= {
            a.path for a in client.list_artifacts(r.info.run_id)}
        assert len(client.get_metric_history(r.info.run_id, "val/accuracy")) == 2
    # What the sweep shows (test_sweep_output.py): each job's line comes from the sweep's own process,
    # numbered there whichever worker process ran the job; then the comparison table.
    client, parent, children = parent_of(store)
    assert parent.data.tags["glyphlab.pid"] not in {r.data.tags["glyphlab.pid"] for r in children}
    lines = job_lines(p.stdout)
    assert [line[:6] for line in lines] == [f"[{k}/8] " for k in range(1, 9)], p.stdout
    accuracy = {r.data.tags["seed"]: r.data.metrics["test/accuracy"] for r in children}
    assert sorted(re.search(r"seed=(\d)", line).group(1) for line in lines) == sorted(accuracy)
    for line in lines:
        seed = re.search(r"seed=(\d)", line).group(1)
        assert re.fullmatch(rf"\[\d/8\] sklearn_mlp runes seed={seed} → {accuracy[seed]:.3f} \(\d+ s\)", line), line
    check_report(client, parent, children, p.stdout)


def test_ckpt_path_that_cannot_be_resumed_is_one_line(tmp_path):
    from glyphlab.errors import ConfigError
    from glyphlab.models.training import check_resume

    with pytest.raises(ConfigError, match="ckpt_path must be a Lightning checkpoint file, got .* \\(not a file\\)"):
        check_resume(tmp_path / "missing.ckpt", 5)
    (tmp_path / "garbage.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="ckpt_path must be a Lightning checkpoint file, got .*garbage.ckpt \\("):
        check_resume(tmp_path / "garbage.ckpt", 5)
    torch.save({"epoch": 3, "state_dict": {}}, tmp_path / "e3.ckpt")
    with pytest.raises(ConfigError,
                       match="saved in epoch 4; trainer.max_epochs must be larger than 3 to train on from it, got 3"):
        check_resume(tmp_path / "e3.ckpt", 3)
    check_resume(tmp_path / "e3.ckpt", 4)       # one epoch left: fine
    check_resume(tmp_path / "e3.ckpt", -1)      # no limit: fine
