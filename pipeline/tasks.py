"""The benchmarks the engine makes, by name: each task module declares its ``TaskSpec``
(``task.py``) once, and run configs, the engine, publishing, scoring on the fly and the command
line look it up here instead of branching on a name. Adding a benchmark: its task module and
one line below."""
from __future__ import annotations

from . import imagenet_c, imagenet_c_bar, imagenet_p
from .task import TaskSpec

TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in (imagenet_c.SPEC, imagenet_p.SPEC, imagenet_c_bar.SPEC)}


def task_spec(name: str) -> TaskSpec:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(TASKS)}")
    return TASKS[name]


def scoring_kind(task: str) -> str:
    """How results of ``task`` are scored and reported: "images" or "sequences" (``TaskSpec.scoring``)."""
    return task_spec(task).scoring


def task_from_config(config):
    """The task a resolved run config (``runconfig.RunConfig``) asks for."""
    return task_spec(config.task).build(config)
