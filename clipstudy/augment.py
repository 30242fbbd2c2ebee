"""uint8 batch augmentation with per-image randomness, cheap next to a training step.

    from clipstudy import augment
    aug = augment.make("crop_flip")             # a name from AUGMENTATIONS (TrainConfig.augment)
    g = augment.generator(seed, images.device)  # same seed -> same batch
    images = aug(images, g)                     # uint8 [B, H, W, 3] -> uint8 [B, H, W, 3]
    x = to_model_input(images, image_size)

Layout: NHWC in and out, as the pool and `clipstudy.data.to_model_input` hold images (a numpy
array is taken too; a tensor comes back). Internally the batch is an NCHW view for
torchvision.transforms.v2.functional. The generator is the only randomness (the global RNG is
not touched): every draw is made with it, on its device, and the image ops run on the images'
device. Give a generator on the images' device (the trainer does): then a GPU step neither
copies a draw from the host nor waits for the GPU (a CPU generator still works with GPU images,
its draws copied over, a wait each). RandAugment and colour jitter pick an op per
image; on CPU each op runs once on the images that drew it (grouped: their indices must be read
on the host, a wait on a GPU); on other devices every op runs on the whole batch and each image
keeps its own op's result (masked: ~4x (jitter) to ~13x (RandAugment) the pixel work, no wait),
the same pixels as grouped. Small constants are made once per device (`torch.tensor(..., device)`
copies from the host and waits, each call). A generator carried across steps reproduces a whole
run; for an exact resume, save its `get_state()` with the checkpoint or seed one per step from
(seed, step).
"none" returns the input's data without a copy; the other pipelines never write into it.

A v2 transform on a batch draws one set of parameters for all its images; here each image gets
its own, and the work stays batched: a crop box per image becomes one `grid_sample` with a
per-image affine theta; colour jitter, grayscale and blur factors per image are broadcasts (blur
is a grouped convolution); RandAugment draws an op and sign per image and applies each v2
functional op once to the stacked images that drew it (masked, off CPU: its five geometric ops
are one grid_sample with a grid per image, the others each run on the whole batch).

Measured cost (benchmarks/augment.py, 2 cores of an AMD EPYC, 2 threads, median ms per batch of
64 at 32 px over three runs; a vit-ti-8 bf16 training step took 55-67 ms in the same runs):
none 0, crop_flip 0.8 (~1.5% of a step), randaugment 3.4-4.0 (~6%), simclr 2.9-3.5 (~5%),
stacked_randaugment 6.0-7.4 (~11%). For 256 at 64 px: 12-14, 14-16, 30-34 and 43-44 ms against a
~460 ms step (3-10%). RandAugment's cost is mostly per-call overhead of its ~40 small grouped calls.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as nnf
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2.functional._geometry import _get_inverse_affine_matrix

from clipstudy.config import ConfigError

Augment = Callable[[torch.Tensor | np.ndarray, torch.Generator], torch.Tensor]

AUGMENTATIONS = {
    "none": "identity: the batch as gathered",
    "crop_flip": "RandomResizedCrop(scale 0.5-1, ratio 3/4-4/3) + horizontal flip p=0.5 (CLIP with augmentation)",
    "randaugment": "RandAugment(num_ops=2, magnitude=9, 31 bins), torchvision's ops, an op draw per image",
    "stacked_randaugment": "RandAugment, then crop(scale 0.2-1) + flip + ColorJitter(.4,.4,.4,.1) p=.8 "
                           "+ grayscale p=.2 (SupCon)",
    "stacked_randaugment_nocrop": "Stacked RandAugment without its crop and flip: RandAugment, ColorJitter p=.8, "
                                  "grayscale p=.2 (our check: do the crops, which cut named emoji out, make it hurt?)",
    "simclr": "crop(scale 0.08-1) + ColorJitter(.4,.4,.4,.1) p=.8 + grayscale p=.2 + blur(3, sigma .1-2) p=.5 "
              "+ flip (SLIP's SSL view)",
}


@functools.lru_cache(maxsize=None)
def _const(values: tuple, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A small constant tensor, made once per device and never written to: `torch.tensor(values,
    device=cuda)` copies from the host and waits for the GPU every call."""
    return torch.tensor(values, dtype=dtype, device=device)


def _grouped(x: torch.Tensor, grouped: bool | None) -> bool:
    """Run each op on the images that drew it (True) or on all, keeping each image's own (False)?
    None: grouped on CPU, where reading the groups waits for nothing and masked took 1-3x as
    long at 64 images of 32 px, 5-12x at 256 of 64 px (2 cores)."""
    return x.device.type == "cpu" if grouped is None else grouped


def generator(seed: int, device: torch.device | str) -> torch.Generator:
    """The augmentations' generator for batches on `device`, seeded: on a GPU it sits there (its
    draws then wait on no host copy), elsewhere on the CPU."""
    device = torch.device(device)
    return torch.Generator(device if device.type == "cuda" else "cpu").manual_seed(seed)


def _rand(shape, g: torch.Generator) -> torch.Tensor:
    """Uniform [0, 1) draws on the generator's device."""
    return torch.rand(shape, generator=g, device=g.device)


def _uniform(shape, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return _rand(shape, g) * (hi - lo) + lo


def _float(x: torch.Tensor) -> torch.Tensor:
    return x if x.is_floating_point() else x.float().div_(255.0)  # colour ops work in [0, 1]


def crop_boxes(b: int, h: int, w: int, scale, ratio, g) -> tuple[torch.Tensor, ...]:
    """(top, left, height, width) float tensors of one RandomResizedCrop box per image: torchvision's
    sampler, its 10 tries drawn at once; no valid try -> the whole image, as torchvision for square images."""
    area = h * w * _uniform((b, 10), *scale, g)
    r = torch.exp(_uniform((b, 10), math.log(ratio[0]), math.log(ratio[1]), g))
    cw, ch = torch.sqrt(area * r).round(), torch.sqrt(area / r).round()
    ok = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = ok.int().argmax(1, keepdim=True)  # the first valid try, as torchvision's loop
    has = ok.any(1)
    cw = torch.where(has, cw.gather(1, first)[:, 0], float(w))
    ch = torch.where(has, ch.gather(1, first)[:, 0], float(h))
    j = (_rand(b, g) * (w - cw + 1)).floor()  # torch.randint(0, w - cw + 1)
    i = (_rand(b, g) * (h - ch + 1)).floor()
    return i, j, ch, cw


def resized_crop_flip(x, g, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), flip_p=0.5) -> torch.Tensor:
    """NCHW -> float NCHW in [0, 1]: a RandomResizedCrop box per image (torchvision's sampler,
    its 10 tries drawn at once; no valid try -> the whole image, as torchvision for square
    images), resized back bilinearly and mirrored with probability `flip_p`, in one grid_sample."""
    b, _, h, w = x.shape
    i, j, ch, cw = crop_boxes(b, h, w, scale, ratio, g)
    flip = _rand(b, g) < flip_p
    # output pixel centre u -> input x = j + (u + .5) * cw / w - .5, in grid_sample's [-1, 1]
    # units (align_corners=False): gx = a * xn + c with a = cw / w, c = (2j + cw) / w - 1
    theta = torch.zeros(b, 2, 3, device=g.device)
    theta[:, 0, 0] = torch.where(flip, -cw / w, cw / w)
    theta[:, 0, 2] = (2 * j + cw) / w - 1
    theta[:, 1, 1] = ch / h
    theta[:, 1, 2] = (2 * i + ch) / h - 1
    x = _float(x)
    grid = nnf.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)  # .to: no-op where g is on x's device
    # keep samples inside the box (between its edge pixels' centres): crop-then-resize clamps
    # at the crop's edge, so pixels outside the box must not bleed in
    lo = torch.stack([(2 * j + 1) / w - 1, (2 * i + 1) / h - 1], 1).view(b, 1, 1, 2).to(x.device)
    hi = torch.stack([(2 * (j + cw) - 1) / w - 1, (2 * (i + ch) - 1) / h - 1], 1).view(b, 1, 1, 2).to(x.device)
    grid = torch.minimum(torch.maximum(grid, lo), hi)
    return nnf.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


_GRAY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (x * _const(_GRAY, x.dtype, x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)


def _hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """RGB -> HSV, hue + shift (turns, per image), -> RGB; F.adjust_hue takes one shift per call.
    Elementwise arithmetic only: torch.where measured ~40x slower per element than a multiply
    on this CPU build, so masks are multiplied in instead."""
    r, g, b = x.unbind(1)
    v = torch.maximum(torch.maximum(r, g), b)
    c = v - torch.minimum(torch.minimum(r, g), b)
    s = c / v.clamp(min=1e-12)  # v = 0 -> c = 0 -> s = 0
    is_r = (v == r).float()  # the max channel picks the hue sector; ties as torchvision: r, g, b
    is_g = (v == g).float() * (1 - is_r)
    h = is_r * (g - b) + is_g * (2 * c + b - r) + (1 - is_r - is_g) * (4 * c + r - g)
    h = h / (6 * c.clamp(min=1e-12)) + shift.view(-1, 1, 1)  # c = 0: a grey, any hue (s = 0)
    # f(n) = v - v s clamp(min(k, 4 - k), 0, 1), k = (n + 6h) mod 6; R, G, B = f(5), f(3), f(1)
    k = h.unsqueeze(1) + _const((5 / 6, 3 / 6, 1 / 6), torch.float32, x.device).view(1, 3, 1, 1)
    k = 6 * torch.frac(k - k.floor())
    return v.unsqueeze(1) * (1 - s.unsqueeze(1) * torch.minimum(k, 4 - k).clamp_(0, 1))


def color_jitter(x, g, strength=(0.4, 0.4, 0.4, 0.1), p=0.8, grouped: bool | None = None) -> torch.Tensor:
    """float NCHW: ColorJitter(brightness, contrast, saturation, hue) with probability p, factors
    and the order of the four ops drawn per image (as v2.ColorJitter per call). `grouped`: see
    `_grouped`; both give the same pixels."""
    x, b = _float(x).clone(), x.shape[0]
    br, co, sa, hu = strength
    f = torch.stack([_uniform(b, 1 - br, 1 + br, g), _uniform(b, 1 - co, 1 + co, g),
                     _uniform(b, 1 - sa, 1 + sa, g), _uniform(b, -hu, hu, g)], 1).to(x.device)
    order = _rand((b, 4), g).argsort(1)
    on = _rand(b, g) < p
    ops = [lambda y, k: y * k,
           lambda y, k: y * k + (1 - k) * _gray(y).mean((1, 2, 3), keepdim=True),
           lambda y, k: y * k + (1 - k) * _gray(y),
           lambda y, k: _hue(y, k)]
    grouped = _grouped(x, grouped)
    for slot in range(4):
        for op in range(4):
            drew = ((order[:, slot] == op) & on).to(x.device)
            if grouped:
                idx = drew.nonzero()[:, 0]
                if len(idx):
                    k = f[idx, op].view(-1, 1, 1, 1) if op < 3 else f[idx, op]
                    x[idx] = ops[op](x[idx], k).clamp_(0, 1)
            else:  # torch.where, not a multiplied-in mask: the same pixels as grouped
                k = f[:, op].view(-1, 1, 1, 1) if op < 3 else f[:, op]
                x = torch.where(drew.view(-1, 1, 1, 1), ops[op](x, k).clamp_(0, 1), x)
    return x


def grayscale(x, g, p=0.2) -> torch.Tensor:
    """float NCHW: RandomGrayscale(p) per image (three equal channels, as v2)."""
    x = _float(x)
    on = (_rand(x.shape[0], g) < p).float().view(-1, 1, 1, 1).to(x.device)
    return x + on * (_gray(x) - x)  # not torch.where: slow on CPU


def gaussian_blur(x, g, sigma=(0.1, 2.0), p=0.5, kernel=3) -> torch.Tensor:
    """float NCHW: a separable Gaussian blur (reflect padding, as v2) with a sigma per image,
    on a random fraction p; the rest get the kernel [0, 1, 0], i.e. stay as they are."""
    x, (b, c, h, w) = _float(x), x.shape
    s = _uniform(b, *sigma, g)
    d = torch.arange(kernel, device=g.device) - kernel // 2
    k = torch.exp(-(d**2) / (2 * s[:, None] ** 2))
    k = torch.where((_rand(b, g) < p)[:, None], k / k.sum(1, keepdim=True), (d == 0).float())
    k = k.repeat_interleave(c, 0).to(x)  # one kernel per (image, channel): a grouped conv
    y = nnf.pad(x.reshape(1, b * c, h, w), [kernel // 2] * 4, mode="reflect")
    y = nnf.conv2d(y, k.view(b * c, 1, 1, kernel), groups=b * c)
    return nnf.conv2d(y, k.view(b * c, 1, kernel, 1), groups=b * c).view(b, c, h, w)


def _sharpen(x: torch.Tensor, factor: float) -> torch.Tensor:
    """F.adjust_sharpness for uint8 NCHW, the same arithmetic, its kernel made once per device
    (torchvision copies it from the host every call, a wait on a GPU)."""
    if min(x.shape[-2:]) <= 2:  # as torchvision: no inner pixels
        return x
    a, b = 1.0 / 13.0, 5.0 / 13.0  # a 3x3 blur: 1s at the edges, 5 in the middle
    kernel = _const(((a, a, a), (a, b, a), (a, a, a)), torch.float32, x.device).expand(x.shape[1], 1, 3, 3)
    y = x.float()
    blurred = nnf.conv2d(y, kernel, groups=x.shape[1]).round_()
    inner = y[..., 1:-1, 1:-1]  # the border keeps its pixels
    inner.add_(blurred.sub_(inner), alpha=1.0 - factor)
    return y.clamp_(0, 255).to(x.dtype)


_NEAREST = v2.InterpolationMode.NEAREST  # v2.RandAugment's default interpolation, fill 0
_affine = functools.partial(F.affine, angle=0.0, scale=1.0, interpolation=_NEAREST)
_RA_OPS = {  # v2.RandAugment._apply_image_or_video_transform, op by op
    "Identity": lambda x, m: x,
    "ShearX": lambda x, m: _affine(x, translate=[0, 0], shear=[math.degrees(math.atan(m)), 0.0], center=[0, 0]),
    "ShearY": lambda x, m: _affine(x, translate=[0, 0], shear=[0.0, math.degrees(math.atan(m))], center=[0, 0]),
    "TranslateX": lambda x, m: _affine(x, translate=[int(m), 0], shear=[0.0, 0.0]),
    "TranslateY": lambda x, m: _affine(x, translate=[0, int(m)], shear=[0.0, 0.0]),
    "Rotate": lambda x, m: F.rotate(x, angle=m, interpolation=_NEAREST),
    "Brightness": lambda x, m: F.adjust_brightness(x, 1.0 + m),
    "Color": lambda x, m: F.adjust_saturation(x, 1.0 + m),
    "Contrast": lambda x, m: F.adjust_contrast(x, 1.0 + m),
    "Sharpness": lambda x, m: _sharpen(x, 1.0 + m),
    "Posterize": lambda x, m: F.posterize(x, int(m)),
    "Solarize": lambda x, m: F.solarize(x, 255.0 * m),
    "AutoContrast": lambda x, m: F.autocontrast(x),
    "Equalize": lambda x, m: F.equalize(x),
}
_RA_MATRIX = {  # (h, w, m) -> the inverse affine matrix that F.affine / F.rotate build for the geometric ops above
    "ShearX": lambda h, w, m: _get_inverse_affine_matrix([-w * 0.5, -h * 0.5], 0.0, [0.0, 0.0], 1.0,
                                                         [math.degrees(math.atan(m)), 0.0]),
    "ShearY": lambda h, w, m: _get_inverse_affine_matrix([-w * 0.5, -h * 0.5], 0.0, [0.0, 0.0], 1.0,
                                                         [0.0, math.degrees(math.atan(m))]),
    "TranslateX": lambda h, w, m: _get_inverse_affine_matrix([0.0, 0.0], 0.0, [float(int(m)), 0.0], 1.0, [0.0, 0.0]),
    "TranslateY": lambda h, w, m: _get_inverse_affine_matrix([0.0, 0.0], 0.0, [0.0, float(int(m))], 1.0, [0.0, 0.0]),
    "Rotate": lambda h, w, m: _get_inverse_affine_matrix([0.0, 0.0], -(m % 360), [0.0, 0.0], 1.0, [0.0, 0.0]),
}


class _Space(NamedTuple):
    """RandAugment's ops for one image size, magnitude and device; a key is op * 2 + negative."""
    names: list[str]  # torchvision's ops, in its order
    mags: list[float]  # their magnitudes, unsigned
    signs: list[bool]  # whether an op's magnitude takes a random sign
    signed: torch.Tensor  # signs, on the device
    geometric: torch.Tensor  # (keys,) bool: the key's op moves pixels
    rows: torch.Tensor  # (keys, 3, 2): each key's F.affine theta, transposed, in [-1, 1] units (else identity)
    xs: torch.Tensor  # (W,) pixel centres about the image centre, as torchvision's grid
    ys: torch.Tensor  # (H,)


@functools.lru_cache(maxsize=None)
def _ra_space(h: int, w: int, magnitude: int, bins: int, device: torch.device) -> _Space:
    """Made once per image size, magnitude and device: its tensors are copied from the host."""
    space = v2.RandAugment._AUGMENTATION_SPACE  # torchvision's ops and magnitude bins, so ours match
    names, signs = list(space), [s for _, s in space.values()]
    mags = [0.0 if (m := fn(bins, h, w)) is None else float(m[magnitude]) for fn, _ in space.values()]
    eye = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    theta = torch.tensor([_RA_MATRIX[n](h, w, -m if neg else m) if n in _RA_MATRIX else eye
                          for n, m in zip(names, mags) for neg in (False, True)], device=device).view(-1, 2, 3)
    return _Space(names, mags, signs, torch.tensor(signs, device=device),
                  torch.tensor([n in _RA_MATRIX for n in names for _ in (0, 1)], device=device),
                  theta.transpose(1, 2) / torch.tensor([0.5 * w, 0.5 * h], device=device),  # as F.affine's grid
                  torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w, device=device),
                  torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h, device=device))


def _ra_masked(x: torch.Tensor, key: torch.Tensor, sp: _Space) -> torch.Tensor:
    """One RandAugment round with nothing read on the host: the geometric ops are one nearest
    grid_sample with each image's F.affine grid, summed elementwise (the same numbers as
    torchvision's product with the base grid; no TF32 matrix product on a GPU); every other op
    runs on the whole batch and each image keeps its own op's result."""
    r = sp.rows[key][:, None, None]  # (B, 1, 1, 3, 2)
    grid = sp.xs.view(1, 1, -1, 1) * r[..., 0, :] + sp.ys.view(1, -1, 1, 1) * r[..., 1, :] + r[..., 2, :]  # B,H,W,2
    moved = nnf.grid_sample(x.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    out = torch.where(sp.geometric[key].view(-1, 1, 1, 1), moved.round_().to(x.dtype), x)
    for k in range(2 * len(sp.names)):
        name, m, neg = sp.names[k // 2], sp.mags[k // 2], k % 2
        if name == "Identity" or name in _RA_MATRIX or (neg and not sp.signs[k // 2]):
            continue
        out = torch.where((key == k).view(-1, 1, 1, 1), _RA_OPS[name](x, -m if neg else m), out)
    return out


def randaugment(x, g, num_ops=2, magnitude=9, bins=31, grouped: bool | None = None) -> torch.Tensor:
    """uint8 NCHW: RandAugment with an op (uniform over torchvision's list) and sign per image and
    round; grouped (see `_grouped`), each (op, sign) group goes through the v2 functional op once,
    stacked; masked, `_ra_masked`. Both give the same pixels."""
    b, _, h, w = x.shape
    sp = _ra_space(h, w, magnitude, bins, x.device)
    grouped = _grouped(x, grouped)
    x = x.clone() if grouped else x  # grouped writes in place; masked makes new tensors
    for _ in range(num_ops):
        op = torch.randint(len(sp.names), (b,), generator=g, device=g.device).to(x.device)
        neg = (_rand(b, g) <= 0.5).to(x.device) & sp.signed[op]  # v2: rand <= 0.5 flips the sign
        key = op * 2 + neg
        if not grouped:
            x = _ra_masked(x, key, sp)
            continue
        for k in key.unique().tolist():  # the groups are read on the host: CPU only by default
            if sp.names[k // 2] == "Identity":
                continue
            idx = (key == k).nonzero()[:, 0]
            x[idx] = _RA_OPS[sp.names[k // 2]](x[idx], -sp.mags[k // 2] if k % 2 else sp.mags[k // 2])
    return x


_PIPELINES = {
    "none": (),
    "crop_flip": (functools.partial(resized_crop_flip, scale=(0.5, 1.0)),),
    "randaugment": (randaugment,),
    # SupCon's CIFAR crop scale (0.2-1): at 32 px, 0.08 of the area is a 9x9 patch
    "stacked_randaugment": (randaugment, functools.partial(resized_crop_flip, scale=(0.2, 1.0)),
                            color_jitter, grayscale),
    "stacked_randaugment_nocrop": (randaugment, color_jitter, grayscale),
    # flip is folded into the crop; it commutes with the colour ops and the symmetric blur.
    # kernel 3 ~ SimCLR's 10% of the image side at 32 px; sigma 0.1-2 as SLIP / torchvision
    "simclr": (functools.partial(resized_crop_flip, scale=(0.08, 1.0)), color_jitter, grayscale, gaussian_blur),
}


def crop_settings(name: str) -> dict | None:
    """The RandomResizedCrop settings (scale, ratio, flip_p) in pipeline `name`, or None where it
    has no crop (what clipstudy/crops.py draws boxes with)."""
    if name not in _PIPELINES:
        raise ConfigError(f"augment={name!r} is not valid; choose one of {list(AUGMENTATIONS)}")
    for op in _PIPELINES[name]:
        if getattr(op, "func", None) is resized_crop_flip:
            return {"scale": op.keywords.get("scale", (0.08, 1.0)), "ratio": op.keywords.get("ratio", (3 / 4, 4 / 3)),
                    "flip_p": op.keywords.get("flip_p", 0.5)}
    return None


def make(name: str) -> Augment:
    """The pipeline `name` as `f(images uint8 [B, H, W, 3], generator) -> uint8 [B, H, W, 3]`."""
    if name not in _PIPELINES:
        raise ConfigError(f"augment={name!r} is not valid; choose one of {list(AUGMENTATIONS)}")
    stages = _PIPELINES[name]

    def augment(images: torch.Tensor | np.ndarray, generator: torch.Generator) -> torch.Tensor:
        if isinstance(images, np.ndarray) and not images.flags.writeable:  # e.g. a memmap slice
            images = images.copy()
        images = torch.as_tensor(images)
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 [B, H, W, 3] images, got {images.dtype} {list(images.shape)}")
        x = images.permute(0, 3, 1, 2)  # a view: NCHW for the v2 ops
        for stage in stages:
            x = stage(x, generator)
        if x.is_floating_point():
            x = x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
        return x.permute(0, 2, 3, 1).contiguous()

    augment.__name__ = augment.__qualname__ = f"augment_{name}"
    return augment
