"""model.members: K independently initialised nets in one module, each trained by its own loss, read by
the mean of their probabilities — in training, in the run's metrics and in the served model."""
import numpy as np
import pytest
import torch

from helpers import TINY, all_runs, compose


def tiny_ensemble(members=3, seed=0, **kwargs):
    from glyphlab.models.ensemble import Ensemble

    torch.manual_seed(seed)
    return Ensemble("glyphlab.models.cnn.CNN", members, image_size=16, n_classes=5, channels=[4, 8], hidden=16,
                    **kwargs)


def test_the_ensemble_reads_the_mean_probability_of_its_members():
    net = tiny_ensemble(3).eval()
    x = torch.rand(6, 1, 16, 16)
    with torch.no_grad():
        mean = torch.stack([torch.softmax(member(x), -1) for member in net.nets]).mean(0)
        out = net(x)
    assert out.shape == (6, 5)
    torch.testing.assert_close(torch.softmax(out, -1), mean)
    torch.testing.assert_close(out.exp(), mean)                       # the output is log(mean p) itself
    # the members start apart (each its own draw of the initial weights), so their answers differ
    first, second = (m.features[0].weight for m in net.nets[:2])
    assert not torch.equal(first, second)
    assert not torch.allclose(torch.softmax(net.nets[0](x), -1), mean)


def test_position_wise_labels_average_each_position_and_train_each_member():
    from glyphlab.models.lit import GlyphClassifier

    net = tiny_ensemble(2, n_positions=3)
    x = torch.rand(4, 1, 16, 16)
    net.eval()
    with torch.no_grad():
        mean = torch.stack([torch.softmax(member(x), -1) for member in net.nets]).mean(0)
        torch.testing.assert_close(torch.softmax(net(x), -1), mean)      # [B, P, C]: per position
    assert mean.shape == (4, 3, 5)
    net.train()
    module = GlyphClassifier(net, lambda p: torch.optim.SGD(p, lr=0.1))
    loss = module.training_step((torch.randint(0, 255, (4, 16, 16), dtype=torch.uint8), torch.randint(0, 5, (4, 3))), 0)
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())


def test_one_member_is_the_net_itself_and_nonsense_is_refused():
    net = tiny_ensemble(1).eval()
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(torch.softmax(net(x), -1), torch.softmax(net.nets[0](x), -1))
    from glyphlab.models.ensemble import Ensemble

    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="members must be an integer of at least 1"):
            Ensemble("glyphlab.models.cnn.CNN", bad, image_size=16, n_classes=5)


def test_each_member_learns_from_its_own_loss_on_its_own_augmented_view():
    from glyphlab.models.lit import GlyphClassifier

    seen = []

    class Noise(torch.nn.Module):   # a stand-in augmenter that records what it handed out
        def forward(self, x):
            seen.append(x + torch.rand_like(x))
            return seen[-1]

    net = tiny_ensemble(2, dropout=0.0)
    module = GlyphClassifier(net, lambda p: torch.optim.SGD(p, lr=0.1), augmenter=Noise())
    images = torch.randint(0, 255, (8, 16, 16), dtype=torch.uint8)
    labels = torch.randint(0, 5, (8,))
    loss = module.training_step((images, labels), 0)
    loss.backward()
    assert len(seen) == 2 and not torch.equal(seen[0], seen[1])      # one draw of the augmentation per member
    # the loss is the mean of the members' own losses on their own views: member k's gradient is that
    # of its own loss (over K), untouched by the other member's
    own = [torch.nn.functional.cross_entropy(m(v), labels) for m, v in zip(net.nets, seen)]
    torch.testing.assert_close(loss, sum(own) / 2)
    for k, member in enumerate(net.nets):
        expected = torch.autograd.grad(own[k] / 2, list(member.parameters()))
        for g, p in zip(expected, member.parameters()):
            torch.testing.assert_close(p.grad, g)


def test_members_must_be_a_whole_number_of_nets(store):
    from glyphlab.errors import ConfigError
    from glyphlab.experiment import check_config

    check_config(compose(["model=cnn", "model.members=4"]))
    for bad in ("0", "-1", "two"):
        with pytest.raises(ConfigError, match=r"model.members must be an integer of at least 1, got"):
            check_config(compose(["model=cnn", f"model.members={bad}"]))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["cnn", "mlp"])
def test_a_run_with_members_trains_logs_and_serves_the_mean_of_its_members(store, model):
    import json
    from pathlib import Path

    import mlflow
    import pandas as pd

    from glyphlab.experiment import run
    from glyphlab.models.ensemble import Ensemble
    from glyphlab.serving import encode_png, model_view

    run(compose([f"model={model}", "data=runes", *TINY, "model.members=2"]))
    client, (logged,) = all_runs(store)
    assert logged.info.status == "FINISHED" and logged.data.params["model.members"] == "2"
    m = logged.data.metrics
    assert m["test/accuracy"] > 1 / 24                                # the pair learned something on 24 runes
    folder = Path(mlflow.artifacts.download_artifacts(f"runs:/{logged.info.run_id}/model"))
    meta = json.loads(next(folder.rglob("glyph_model.json")).read_text(encoding="utf-8"))
    assert meta["net"]["target"] == "glyphlab.models.ensemble.Ensemble" and meta["net"]["kwargs"]["members"] == 2
    net = Ensemble(**meta["net"]["kwargs"])
    net.load_state_dict(torch.load(next(folder.rglob("weights.pt")), weights_only=True))
    net.eval()
    single_params = sum(p.numel() for p in net.nets[0].parameters())
    assert m["model/n_params"] == 2 * single_params
    # the served pyfunc (what predict and the draw page read) answers the members' mean probability
    from helpers import fresh_runes

    images = fresh_runes(16)
    seen = np.stack([model_view(encode_png(im), meta) for im in images])   # the served model's own view
    served = mlflow.pyfunc.load_model(f"runs:/{logged.info.run_id}/model")
    proba = served.predict(pd.DataFrame({"image": [encode_png(im) for im in images]})).to_numpy()
    with torch.no_grad():
        x = torch.from_numpy(seen).unsqueeze(1).float() / 255
        mean = torch.stack([torch.softmax(member(x), -1) for member in net.nets]).mean(0).numpy()
    np.testing.assert_allclose(proba, mean, atol=1e-5)
    assert not np.allclose(proba, proba[0])


def test_with_own_member_data_each_member_learns_from_its_own_images():
    from glyphlab.models.lit import GlyphClassifier

    net = tiny_ensemble(2, dropout=0.0)
    module = GlyphClassifier(net, lambda p: torch.optim.SGD(p, lr=0.1))
    images = torch.randint(0, 255, (8, 2, 16, 16), dtype=torch.uint8)   # [B, K, H, W]: member k's own images
    labels = torch.randint(0, 5, (8,))
    loss = module.training_step((images, labels), 0)
    own = [torch.nn.functional.cross_entropy(m(images[:, k].unsqueeze(1).float() / 255), labels)
           for k, m in enumerate(net.nets)]
    torch.testing.assert_close(loss, sum(own) / 2)
    swapped = module.training_step((images.flip(1), labels), 0)                # the views matter, by member
    assert not torch.allclose(swapped, loss)


def test_own_member_data_builds_one_set_per_member_with_the_same_labels(store):
    from glyphlab import data as datasets
    from glyphlab import models
    from glyphlab.steps import member_views
    from omegaconf import OmegaConf

    cfg = compose(["model=cnn", "data=runes", *TINY, "model.members=3", "model.member_data=own"])
    glyphs = datasets.load(OmegaConf.to_container(cfg.data, resolve=True), cache_dir=cfg.cache_dir)
    train, _, _ = datasets.split(glyphs, cfg.split.val, cfg.split.test, cfg.seed)
    torch_family, sklearn_family = (models.family(compose([f"model={m}"]).model.adapter) for m in ("cnn", "sklearn_mlp"))
    views = member_views(cfg, torch_family, glyphs, train, glyphs.images[train])
    assert views.shape == (len(train), 3, *glyphs.images.shape[1:])
    np.testing.assert_array_equal(views[:, 0], glyphs.images[train])
    assert not np.array_equal(views[:, 1], views[:, 0]) and not np.array_equal(views[:, 2], views[:, 1])
    shared = compose(["model=cnn", "data=runes", *TINY, "model.members=3"])
    assert member_views(shared, torch_family, glyphs, train, glyphs.images[train]).shape == glyphs.images[train].shape
    # a family without members (sklearn_mlp under the read_real preset) trains on its one set, offline copies and all
    inflated = np.concatenate([glyphs.images[train]] * 2)
    assert member_views(cfg, sklearn_family, glyphs, train, inflated) is inflated


def test_own_member_data_copies_offline_sets_alike_and_leaves_read_images_shared(store, tmp_path):
    from glyphlab import augment, models
    from glyphlab import data as datasets
    from glyphlab.errors import ConfigError
    from glyphlab.experiment import check_config
    from glyphlab.steps import member_views
    from omegaconf import OmegaConf

    with pytest.raises(ConfigError, match="model.member_data must be one of shared, own, got 'mine'"):
        check_config(compose(["model=cnn", "model.member_data=mine"]))
    family = models.family(compose(["model=cnn"]).model.adapter)
    cfg = compose(["model=cnn", "data=runes", *TINY, "model.members=2", "model.member_data=own", "augmentation=affine",
                   "augmentation.mode=offline", "augmentation.copies=2"])
    check_config(cfg)
    glyphs = datasets.load(OmegaConf.to_container(cfg.data, resolve=True), cache_dir=cfg.cache_dir)
    train, _, _ = datasets.split(glyphs, cfg.split.val, cfg.split.test, cfg.seed)
    x_train, _ = augment.inflate(glyphs.images[train], glyphs.labels[train], cfg.augmentation, cfg.seed)
    views = member_views(cfg, family, glyphs, train, x_train)
    assert views.shape == (3 * len(train), 2, *glyphs.images.shape[1:])   # originals + 2 copies, for each member
    assert not np.array_equal(views[len(train):, 1], views[len(train):, 0])
    folder = compose(["model=cnn", "data=folder", f"data.root={tmp_path}", "model.members=2", "model.member_data=own"])
    check_config(folder)
    assert member_views(folder, family, glyphs, train, x_train) is x_train        # read images: every member the same
