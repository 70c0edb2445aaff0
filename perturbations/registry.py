"""ImageNet-P's registry: the 14 perturbations, and the 20 sequence kinds they make.

A kind is a perturbation at one difficulty, named as the originals' output folders: the
three noises come at difficulties 1-3 (``gaussian_noise``, ``gaussian_noise_2``,
``gaussian_noise_3``), every other perturbation at difficulty 1 only. A kernel's ``family``
is how a sequence is compared frame to frame (ImageNet-P/test.py): ``noise`` sequences are
independent perturbations of frame 0, ``temporal`` ones sweep a parameter with the frame.
"""
from __future__ import annotations

from corruptions.registry import Registry

# the paper's order (Table 3 / Figure 2), then the four validation perturbations
TEST = ("gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow", "brightness",
        "translate", "rotate", "tilt", "scale")
VALIDATION = ("speckle_noise", "gaussian_blur", "spatter", "shear")
NOISES = ("gaussian_noise", "shot_noise", "speckle_noise")  # the kernels with difficulties 1-3
DIFFICULTIES = (1, 2, 3)
FAMILIES = ("noise", "temporal")

PERTURBATIONS = Registry("imagenet-p", {"test": TEST, "validation": VALIDATION},
                         ("perturbations.noise", "perturbations.geometry", "perturbations.temporal"))


def register(name: str, *, family: str, levels=None, shared=None, sample=None, windowed=False):
    """``PERTURBATIONS.register`` with the keys every sequence has: ``frames`` (how many),
    ``input`` (the named stage making the kernel's input from the photo) and ``output`` (the
    named stage applied to every frame after), checked against ``sequence_stages`` on load."""
    from corruptions.settings import POSITIVE_INT, text
    common = {"frames": POSITIVE_INT, "input": text("a stage name"), "output": text("a stage name")}
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    return PERTURBATIONS.register(name, family=family, levels=levels or {}, shared={**common, **(shared or {})},
                                  sample=sample, windowed=windowed)


def difficulties(perturbation: str) -> tuple[int, ...]:
    return DIFFICULTIES if perturbation in NOISES else (1,)


def kind_name(perturbation: str, difficulty: int) -> str:
    return perturbation if difficulty == 1 else f"{perturbation}_{difficulty}"


def _kinds(perturbations) -> list[str]:
    return [kind_name(p, d) for p in perturbations for d in difficulties(p)]


ALL_KINDS = tuple(_kinds(TEST[:2]) + _kinds(TEST[2:]) + _kinds(VALIDATION[:1]) + _kinds(VALIDATION[1:]))
_PARTS = {kind_name(p, d): (p, d) for p in TEST + VALIDATION for d in difficulties(p)}


def split_kind(kind: str) -> tuple[str, int]:
    """(perturbation, difficulty) of a sequence kind; ValueError naming the 20 kinds."""
    try:
        return _PARTS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unknown ImageNet-P sequence kind {kind!r}; allowed: {', '.join(ALL_KINDS)}") from None


def sequence_names(group: str = "all") -> list[str]:
    """Sequence kinds in the paper's order: ``"test"`` (the 10 test perturbations at difficulty
    1), ``"validation"`` (the 4 validation ones at difficulty 1), ``"all"`` (all 20 kinds, the
    noise difficulties 2 and 3 included), ``"difficulties"`` (the 6 kinds at difficulty 2 or 3)."""
    if group == "all":
        return list(ALL_KINDS)
    if group in ("test", "validation"):
        return list(PERTURBATIONS.names(group))
    if group == "difficulties":
        return [k for k in ALL_KINDS if split_kind(k)[1] > 1]
    raise ValueError(f"unknown ImageNet-P group {group!r}; allowed: test, validation, difficulties, all")
