"""Augmentation: shapes and ranges kept, the rotate option's exact 5x inflation, per-sample and
per-call randomness, reproducibility from the seed, and every option's YAML composing and building."""
import copy
import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

from glyphlab import augment
from glyphlab.errors import DataError

CONF = Path(__file__).resolve().parents[1] / "conf"
OPTIONS = sorted(p.stem for p in (CONF / "augmentation").glob("*.yaml"))
RANDOM_OPTIONS = [name for name in OPTIONS if name not in ("none", "rotate")]


@functools.lru_cache
def composed(name: str):
    with initialize_config_dir(str(CONF / "augmentation"), version_base=None):
        return compose(config_name=name)


def option(name: str, **overrides):
    """The option as the app sees it: composed by Hydra (struct mode), with some values changed."""
    cfg = copy.deepcopy(composed(name))
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


def glyphs(n: int = 6, size: int = 32) -> np.ndarray:
    """uint8 [n, size, size]: an asymmetric 'L' with a short foot, shifted a little per image."""
    images = np.zeros((n, size, size), np.uint8)
    for k in range(n):
        x0 = size // 4 + k % 3
        images[k, size // 5:size - size // 4, x0:x0 + 3] = 255          # the upright
        images[k, size - size // 4 - 3:size - size // 4, x0:x0 + size // 2] = 255   # the foot
    return images


def batch(n: int = 8, size: int = 32) -> torch.Tensor:
    """float [n, 1, size, size] in 0..1: n copies of one glyph, so any difference comes from the augmenter."""
    return torch.from_numpy(np.repeat(glyphs(1, size), n, axis=0)).unsqueeze(1).float() / 255


def test_every_option_composes_and_builds():
    assert {"none", "rotate", "affine", "elastic", "heavy"} <= set(OPTIONS)
    with initialize_config_dir(str(CONF), version_base=None):
        for name in OPTIONS:
            cfg = compose(overrides=[f"+augmentation={name}"]).augmentation
            assert cfg.name == name == OmegaConf.load(CONF / "augmentation" / f"{name}.yaml").name
            assert cfg.mode in augment.MODES and isinstance(cfg.copies, int)
            assert (augment.build_augmenter(cfg) is None) == (name == "none")


@pytest.mark.parametrize("name", OPTIONS)
@pytest.mark.parametrize("size", [32, 64])
def test_batched_transform_keeps_shape_dtype_and_range(name, size):
    augmenter = augment.build_augmenter(option(name))
    x = batch(8, size)
    y = x if augmenter is None else augmenter(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert 0 <= y.min() and y.max() <= 1


@pytest.mark.parametrize("name", OPTIONS)
def test_inflate_offline_keeps_dtype_and_shape(name):
    images, labels = glyphs(5), np.arange(5, dtype=np.int64)
    cfg = option(name, mode="offline")
    out, out_labels = augment.inflate(images, labels, cfg, seed=0)
    assert out.dtype == np.uint8 and out.shape == ((cfg.copies + 1) * 5, 32, 32)
    assert out_labels.dtype == np.int64 and len(out_labels) == len(out)
    np.testing.assert_array_equal(out[:5], images)  # the originals come first, untouched


def test_rotate_is_exactly_five_times_with_originals_first():
    images, labels = glyphs(7), np.arange(7, dtype=np.int64) % 3
    out, out_labels = augment.inflate(images, labels, option("rotate"), seed=0)
    assert out.shape == (35, 32, 32)
    np.testing.assert_array_equal(out[:7], images)
    np.testing.assert_array_equal(out_labels, np.tile(labels, 5))
    for k in range(1, 5):
        assert not np.array_equal(out[7 * k:7 * (k + 1)], images)
    # position-wise labels [N, P] are repeated the same way
    seq = np.arange(14, dtype=np.int64).reshape(7, 2)
    np.testing.assert_array_equal(augment.inflate(images, seq, option("rotate"), 0)[1], np.tile(seq, (5, 1)))


def test_rotate_copies_match_the_angles_with_counter_clockwise_positive():
    images = glyphs(1)
    out, _ = augment.inflate(images, np.zeros(1, np.int64), option("rotate"), seed=0)
    original = Image.fromarray(images[0])
    for rotated, angle in zip(out[1:], [-20, -10, 10, 20]):
        # Pillow's rotate(angle) is counter-clockwise for positive angles, about the centre
        same = np.asarray(original.rotate(angle, resample=Image.BILINEAR), np.float32)
        mirror = np.asarray(original.rotate(-angle, resample=Image.BILINEAR), np.float32)
        err = np.abs(rotated.astype(np.float32) - same).mean()
        assert err < 5, f"{angle}: mean abs difference {err:.1f} from Pillow's rotation"
        assert err < 0.5 * np.abs(rotated.astype(np.float32) - mirror).mean()


def test_rotate_moves_a_marker_pixel_the_right_way():
    size, centre = 33, 16
    images = np.zeros((1, size, size), np.uint8)
    images[0, centre - 1:centre + 2, centre + 11:centre + 14] = 255  # a dot right of the centre
    out, _ = augment.inflate(images, np.zeros(1, np.int64), option("rotate"), seed=0)
    for rotated, angle in zip(out[1:], [-20, -10, 10, 20]):
        row, col = np.unravel_index(rotated.argmax(), rotated.shape)
        # counter-clockwise (positive) on screen moves a point right of the centre upwards
        expected_row = centre - 12 * np.sin(np.radians(angle))
        assert abs(row - expected_row) <= 1.5, (angle, row, expected_row)
        assert col > centre
    assert (out[4].argmax() // size) < centre < (out[1].argmax() // size)  # +20 up, -20 down


def test_rotate_keeps_the_background_dark():
    images = glyphs(3)
    out, _ = augment.inflate(images, np.zeros(3, np.int64), option("rotate"), seed=0)
    corners = out[3:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.max() == 0  # zero fill: no bright border where the rotation uncovered the corners


@pytest.mark.parametrize("name", RANDOM_OPTIONS + ["rotate"])
def test_parameters_differ_per_sample_within_a_batch(name):
    torch.manual_seed(0)
    y = augment.build_augmenter(option(name))(batch(16)).flatten(1)
    distinct = {tuple(row.round(decimals=3).tolist()) for row in y}
    # rotate draws one of 5 angles per sample; the random options give every sample its own transform
    assert len(distinct) >= (4 if name == "rotate" else 15)


@pytest.mark.parametrize("name", RANDOM_OPTIONS)
def test_each_call_differs_and_the_seed_reproduces(name):
    augmenter, x = augment.build_augmenter(option(name)), batch(8)
    torch.manual_seed(3)
    first, second = augmenter(x), augmenter(x)
    assert not torch.equal(first, second)  # a new epoch sees new copies
    torch.manual_seed(3)
    assert torch.equal(augmenter(x), first)


@pytest.mark.parametrize("name", RANDOM_OPTIONS)
def test_inflate_depends_on_the_seed_only_and_leaves_the_global_rng(name):
    images, labels, cfg = glyphs(4), np.zeros(4, np.int64), option(name, mode="offline", copies=2)
    state = torch.random.get_rng_state()
    a = augment.inflate(images, labels, cfg, seed=1)[0]
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(123)  # a different global state must not matter
    np.testing.assert_array_equal(augment.inflate(images, labels, cfg, seed=1)[0], a)
    assert not np.array_equal(augment.inflate(images, labels, cfg, seed=2)[0], a)
    assert not np.array_equal(a[4:8], a[8:12])  # the two copies differ from each other


def test_none_is_identity():
    images, labels = glyphs(3), np.arange(3, dtype=np.int64)
    assert augment.build_augmenter(option("none")) is None
    out, out_labels = augment.inflate(images, labels, option("none"), seed=0)
    assert out is images and out_labels is labels


@pytest.mark.parametrize("name", RANDOM_OPTIONS)
def test_online_mode_leaves_the_training_set_alone(name):
    images, labels = glyphs(3), np.arange(3, dtype=np.int64)
    out, out_labels = augment.inflate(images, labels, option(name, mode="online"), seed=0)
    assert out is images and out_labels is labels


def test_stroke_width_thins_and_thickens_per_sample():
    stage = augment.RandomStrokeWidth(1.0)
    x = batch(2)
    amounts = torch.tensor([1.0, -1.0])  # first sample thicker, second thinner
    y = stage(x, params={**stage.forward_parameters(x.shape), "amount": amounts})
    assert y[0].sum() > x[0].sum() * 1.3 and y[1].sum() < x[1].sum() * 0.7


def test_bad_configs_say_what_is_wrong():
    images, labels = glyphs(2), np.zeros(2, np.int64)
    with pytest.raises(DataError, match="augmentation.mode"):
        augment.inflate(images, labels, option("affine", mode="sometimes"), 0)
    with pytest.raises(DataError, match="number of augmentation.angles"):
        augment.inflate(images, labels, option("rotate", copies=2), 0)
    with pytest.raises(DataError, match="augmentation.copies"):
        augment.inflate(images, labels, option("affine", mode="offline", copies=-1), 0)
    with pytest.raises(DataError, match="uint8 images"):
        augment.inflate(images.astype(np.float32), labels, option("rotate"), 0)


def test_sample_grid_and_preview_write_pngs(tmp_path):
    images = glyphs(4)
    augment.sample_grid(images, images[::-1], tmp_path / "one.png", n=3)
    augment.preview(images, option("rotate"), tmp_path / "augmentation_samples.png", seed=0, n=3)
    augment.preview(images, option("none"), tmp_path / "none.png", seed=0, n=3)
    for name in ("one.png", "augmentation_samples.png", "none.png"):
        with Image.open(tmp_path / name) as im:
            assert im.format == "PNG" and im.width > 100
    with Image.open(tmp_path / "augmentation_samples.png") as im:
        assert im.width > im.height  # 3 rows, 1 original + 4 rotated columns


@pytest.mark.parametrize("size", [32, 48])
def test_elastic_equals_kornias_elastic_transform(size):
    from kornia.geometry.transform import elastic_transform2d

    torch.manual_seed(0)
    stage, x = augment.RandomElasticPixels(alpha=34, sigma=4), batch(4, size)
    params = stage.forward_parameters(x.shape)
    alpha = 2 * 34 / size  # kornia's alpha is in half-image units
    expected = elastic_transform2d(x, params["noise"], (25, 25), (4.0, 4.0), (alpha, alpha))
    ours = stage.apply_transform(x, params, stage.flags)
    assert (ours - x).abs().max() > 0.5  # it does distort
    assert (ours - expected).abs().max() < 1e-4
