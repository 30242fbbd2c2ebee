"""Batch augmentation: shapes and dtype kept, seeded, random per image, the crop/flip geometry
right, RandAugment's ops equal to torchvision's, unknown names rejected, draws on the generator's
device, the masked (GPU) path equal to the grouped one and free of waits.
Cost: ~3 s on 2 CPU cores."""

import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from clipstudy import augment
from clipstudy.config import ConfigError

RANDOM = [n for n in augment.AUGMENTATIONS if n != "none"]


def batch(b=8, size=32, seed=0):
    return torch.randint(0, 256, (b, size, size, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def run(name, images, seed=0):
    return augment.make(name)(images, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", list(augment.AUGMENTATIONS))
def test_keeps_shape_and_dtype(name):
    for images in (batch(), batch(3, 20)):
        out = run(name, images)
        assert out.dtype == torch.uint8 and out.shape == images.shape and out.is_contiguous()
    assert run(name, batch().numpy()).shape == batch().shape  # the pool's numpy batches too


@pytest.mark.parametrize("name", RANDOM)
def test_seeded(name):
    images = batch()
    assert torch.equal(run(name, images, 1), run(name, images, 1))
    assert not torch.equal(run(name, images, 1), run(name, images, 2))


@pytest.mark.parametrize("name", RANDOM)
def test_random_per_image(name):
    images = batch(1).expand(16, -1, -1, -1).contiguous()  # 16 copies of one image
    out = run(name, images)
    assert len({o.numpy().tobytes() for o in out}) >= 4  # v2 on a batch would give one result


def test_none_is_identity_and_input_untouched():
    images = batch()
    assert torch.equal(run("none", images), images)
    copy = images.clone()
    for name in RANDOM:
        run(name, images)
    assert torch.equal(images, copy)


def test_crop_flip_keeps_a_constant_colour():
    images = torch.tensor([200, 31, 7], dtype=torch.uint8).expand(8, 32, 32, 3).contiguous()
    assert torch.equal(run("crop_flip", images), images)


def test_full_crop_is_identity_or_mirror():
    x = batch(32).permute(0, 3, 1, 2)
    out = augment.resized_crop_flip(x, torch.Generator().manual_seed(0), scale=(1, 1), ratio=(1, 1))
    out = out.mul(255).round().to(torch.uint8)
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all() and same.any() and mirrored.any()


def test_crop_box_matches_torchvision_resized_crop():
    # scale 0.25, ratio 1: a 16x16 box; with no flip the output is F.resized_crop of some box
    x = batch(4).permute(0, 3, 1, 2).contiguous()
    out = augment.resized_crop_flip(x, torch.Generator().manual_seed(3), scale=(0.25, 0.25), ratio=(1, 1), flip_p=0)
    out = out.mul(255).round().to(torch.uint8)
    for o, img in zip(out, x):
        diffs = [(o.int() - F.resized_crop(img, i, j, 16, 16, [32, 32]).int()).abs().max()
                 for i in range(17) for j in range(17)]
        assert min(diffs) <= 1


def test_randaugment_ops_match_torchvision():
    x = batch(4).permute(0, 3, 1, 2)  # the channels-last view the pipelines pass on
    ra = v2.RandAugment()
    for name, m in [("ShearX", 0.09), ("ShearY", -0.09), ("TranslateX", 4.3), ("TranslateY", -4.3), ("Rotate", 9.0),
                    ("Brightness", 0.27), ("Color", -0.27), ("Contrast", 0.27), ("Sharpness", -0.27),
                    ("Posterize", 7), ("Solarize", 0.7), ("AutoContrast", 0.0), ("Equalize", 0.0)]:
        expected = ra._apply_image_or_video_transform(x.contiguous(), name, m, interpolation=ra.interpolation,
                                                      fill=ra._fill)
        assert torch.equal(augment._RA_OPS[name](x, m), expected), name
    assert set(augment._RA_OPS) == set(v2.RandAugment._AUGMENTATION_SPACE)


def test_hue_shift_matches_torchvision():
    x = batch(4).permute(0, 3, 1, 2).float() / 255
    shifts = torch.tensor([0.0, 0.1, -0.1, 0.5])
    expected = torch.stack([F.adjust_hue(img, float(s)) for img, s in zip(x, shifts)])
    assert (augment._hue(x, shifts) - expected).abs().max() < 1e-4


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="crop_flip"):
        augment.make("autoaugment")


def test_every_draw_is_made_on_the_generators_device(monkeypatch):
    """On a GPU the trainer's generator sits on the batch's device: a draw made on the CPU would be
    copied to the device with a wait, ~60 times a step for Stacked RandAugment."""
    draws = []
    for fn in ("rand", "randint"):
        def spy(*args, _real=getattr(torch, fn), **kwargs):
            draws.append(kwargs.get("device") == kwargs["generator"].device)
            return _real(*args, **kwargs)
        monkeypatch.setattr(torch, fn, spy)
    images = torch.zeros(8, 32, 32, 3, dtype=torch.uint8)
    for name in augment.AUGMENTATIONS:
        augment.make(name)(images, torch.Generator().manual_seed(0))
    assert draws and all(draws)


def test_masked_ops_give_the_grouped_pixels(monkeypatch):
    """Off CPU RandAugment and colour jitter run every op on the whole batch and keep each image's
    own (no wait for the GPU); that must give the pixels of running each op on its images."""
    images = batch()
    grouped = {name: run(name, images) for name in ("stacked_randaugment", "simclr")}  # RandAugment, jitter
    x = torch.randint(0, 256, (8, 3, 17, 23), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    for magnitude in (0, 30):  # no change and the largest, on a non-square image
        assert torch.equal(augment.randaugment(x, torch.Generator().manual_seed(2), magnitude=magnitude, grouped=False),
                           augment.randaugment(x, torch.Generator().manual_seed(2), magnitude=magnitude, grouped=True))
    monkeypatch.setattr(augment, "_grouped", lambda x, grouped: False)
    for name, expected in grouped.items():
        assert torch.equal(run(name, images), expected), name


def test_off_cpu_no_value_is_read_on_the_host_and_no_constant_copied(monkeypatch):
    """Each would be a wait on a GPU: reading a value on the host (item, tolist, nonzero, unique,
    `if` on a tensor: spied on here, and on a meta tensor, which has no values, they fail inside
    torch too) or building a tensor from host data on the device (a copy), once a first call has
    made the constants. The generator is a CPU one (meta has none); the trainer's is the GPU's."""
    images = torch.zeros(8, 32, 32, 3, dtype=torch.uint8, device="meta")
    for name in augment.AUGMENTATIONS:
        augment.make(name)(images, torch.Generator().manual_seed(0))
    calls = []
    for owner, fn in ((torch, "tensor"), (torch.Tensor, "new_tensor")):
        def made(*args, _real=getattr(owner, fn), **kwargs):
            out = _real(*args, **kwargs)
            calls.append(f"tensor made on {out.device.type}")
            return out
        monkeypatch.setattr(owner, fn, made)
    for fn in ("item", "tolist", "nonzero", "unique", "__bool__"):
        def read(*args, _real=getattr(torch.Tensor, fn), _fn=fn, **kwargs):
            calls.append(_fn)
            return _real(*args, **kwargs)
        monkeypatch.setattr(torch.Tensor, fn, read)
    for name in augment.AUGMENTATIONS:
        out = augment.make(name)(images, torch.Generator().manual_seed(0))
        assert out.shape == images.shape and out.device == images.device
    assert set(calls) <= {"tensor made on cpu"}, set(calls)
