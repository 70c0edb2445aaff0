"""The original ImageNet-P frame loops, run from a copy of hendrycks/robustness
``ImageNet-P/create_p/make_imagenet_p.py`` that the user supplies (nothing of it is kept here).

That script is one loop over the validation images holding one block per perturbation, most
commented out, difficulties 2-3 commented one level deeper. As the reference data were made
(shared/reference/imagenet-p/README.md): each block is uncommented, and each of its frame loops
(``for i in ...`` followed by ``save_dir = '.../<kind>/'``) runs after the block's setup lines.
The frame files become a list (``z.save(os.path.join(tmp, ...))`` -> ``frames.append(z)``);
the temporary folders, ffmpeg calls and cleanup are dropped. torchvision 0.2.1 is shimmed
(Resize, CenterCrop, ToTensor, ToPILImage, Compose, ``functional.affine``); torch is the real
one; ``multichannel=True`` -> ``channel_axis=-1`` and ``np.fromstring`` -> ``np.frombuffer``
for today's libraries.
"""
from __future__ import annotations

import ast
import re
import types
from pathlib import Path

import numpy as np
from PIL import Image

from corruptions.preprocess import crop_box, resize_shorter
from perturbations.geometry import affine

_BLOCK = re.compile(r"/{15} (?P<name>[A-Za-z ]+) Code /{15}\n(?P<body>.*?)\n[ #]*/{15} End (?P=name) Code", re.S)
_KIND = re.compile(r"/ImageNet-P/(\w+)/")


def _torchvision_shims(torch) -> tuple[types.SimpleNamespace, types.SimpleNamespace]:
    """``trn`` and ``trn_F`` as torchvision 0.2.1 behaves for these scripts."""
    def to_tensor(picture):
        return torch.from_numpy(np.array(picture, np.uint8)).permute(2, 0, 1).contiguous().float().div(255)

    def to_pil(tensor):
        return Image.fromarray(np.transpose(tensor.mul(255).byte().numpy(), (1, 2, 0)), "RGB")

    def centre_crop(size):
        return lambda picture: picture.crop(crop_box(*picture.size, {"op": "center_crop", "size": size}))

    def compose(steps):
        def run(value):
            for step in steps:
                value = step(value)
            return value
        return run

    trn = types.SimpleNamespace(Resize=lambda size: (lambda picture: resize_shorter(picture, size)),
                                CenterCrop=centre_crop, ToTensor=lambda: to_tensor, ToPILImage=lambda: to_pil,
                                Compose=compose)

    def functional_affine(picture, angle, translate, scale, shear, resample=Image.NEAREST):
        return affine(picture, angle, translate, scale, shear, resample)

    return trn, types.SimpleNamespace(affine=functional_affine)


def _uncomment(body: str) -> str:
    """A block's lines without the loop's indentation and without their comment markers."""
    lines = body.split("\n")
    indent = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    out = []
    for line in lines:
        line = line[indent:]
        while line.startswith("# ") or line == "#":
            line = line[2:]
        out.append(line)
    return "\n".join(out)


class _FramesInsteadOfFiles(ast.NodeTransformer):
    """``X.save(os.path.join(tmp, ...))`` -> ``_frames.append(np.asarray(X))``."""

    def visit_Expr(self, node):
        call = node.value
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "save" \
                and "tmp" in ast.unparse(call.args[0] if call.args else call):
            append = ast.parse(f"_frames.append(np.asarray({ast.unparse(call.func.value)}))").body[0]
            return ast.copy_location(append, node)
        return node


def _is_file_handling(statement) -> bool:
    text = ast.unparse(statement)
    return (text.startswith(("tmp =", "save_dir =", "os.makedirs(tmp", "os.system(", "rmtree("))
            or text.startswith("if not os.path.exists(save_dir)"))


def _frame_loops(body: str) -> dict[str, str]:
    """kind -> the code of one sequence: the block's setup, then that kind's frame loop."""
    statements = ast.parse(_uncomment(body)).body
    setup, loops, kinds = [], [], {}
    for statement in statements:
        if isinstance(statement, ast.For):
            loops.append(statement)
        elif isinstance(statement, ast.Assign) and ast.unparse(statement).startswith("save_dir ="):
            kinds[_KIND.search(ast.unparse(statement)).group(1)] = loops[-1]
        elif not loops and not _is_file_handling(statement):
            setup.append(statement)
    out = {}
    for kind, loop in kinds.items():
        module = ast.Module(body=[*setup, loop], type_ignores=[])
        out[kind] = ast.unparse(ast.fix_missing_locations(_FramesInsteadOfFiles().visit(module)))
    return out


def load_original_sequences(script: Path) -> dict:
    """kind -> f(img) giving the original's frames (uint8 arrays) for ``img``, the photo after
    the script's own ``trn.Resize(256)`` (a PIL image)."""
    import torch

    text = script.read_text()
    for old, new in (("multichannel=True", "channel_axis=-1"), ("np.fromstring", "np.frombuffer")):
        text = text.replace(old, new)
    helpers = text[:text.index("for index, folder in enumerate(")]
    helpers = "\n".join(line for line in helpers.split("\n") if "torchvision" not in line)
    namespace = {"__name__": "original_make_imagenet_p"}
    exec(compile(helpers, str(script), "exec"), namespace)  # noqa: S102 - timing the reference only
    namespace["trn"], namespace["trn_F"] = _torchvision_shims(torch)
    sequences = {}
    for block in _BLOCK.finditer(text):
        for kind, code in _frame_loops(block.group("body")).items():
            compiled = compile(code, f"{script}:{kind}", "exec")

            def run(img, compiled=compiled):
                scope = {**namespace, "img": img, "_frames": []}
                exec(compiled, scope)  # noqa: S102
                return [np.asarray(frame, np.uint8) for frame in scope["_frames"]]
            sequences[kind] = run
    return sequences
