"""Options that several commands take, declared once: the same flag, help text and checks
everywhere they appear.

Each is a type for a command's parameter, ``Annotated[type, typer.Option(...)]`` (typer reads
the option from the annotation); the command gives the default, ``max_steps: MaxSteps = 25``,
or none for a required one. An option whose meaning differs between commands (``--out``,
``--seed``, ``--ray``, ``--memory-gb`` …) stays declared in its command, with its own help.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# `zoolens info`, `remove`, `verify`, `ensemble`: the zoo the command reads.
ZooArgument = Annotated[Path, typer.Argument(help="Zoo folder.")]

# The greedy ensemble selection: `zoolens analyze` and `zoolens ensemble`.
Pool = Annotated[
    str | None,
    typer.Option(
        "--pool",
        help='Greedy-search candidates: a filter on models.csv such as "accuracy<0.78" (<, <=, '
        ">, >=, ==, !=, joined by 'and') or a comma list of names (default: all models with "
        "probabilities).",
    ),
]
MaxSteps = Annotated[int, typer.Option("--max-steps", help="Greedy selection steps.")]
Combine = Annotated[
    str,
    typer.Option(
        "--combine",
        help="Ensemble by averaging calibrated 'probs' (default) or calibrated 'logits' (the "
        "paper's Fig. 11).",
    ),
]
NoCalibration = Annotated[
    bool,
    typer.Option(
        "--no-calibration",
        help="No calibration split: measure on all examples with temperatures fixed at 1 and "
        "cross-fit the greedy selection in --folds folds (chosen on k-1 folds, scored on the "
        "held-out one); what a zoo created with --calibration-fraction 0 gets anyway.",
    ),
]
Folds = Annotated[
    int,
    typer.Option(
        "--folds",
        help="Folds of the cross-fitted greedy selection when there is no calibration split.",
    ),
]

# Running models over images: `zoolens collect` and `zoolens predict` (collect.runner.RunOptions).
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch.")]
Device = Annotated[
    str, typer.Option("--device", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, mps.")
]
Amp = Annotated[
    bool | None, typer.Option("--amp/--no-amp", help="Mixed precision (default: on for CUDA).")
]
TorchThreads = Annotated[
    int | None,
    typer.Option("--threads", min=1, help="torch CPU threads (pin it for bit-identical reruns)."),
]
StopAtBadImage = Annotated[
    bool,
    typer.Option("--strict", help="Stop at an undecodable image (default: skip and list it)."),
]
CreateZoo = Annotated[bool, typer.Option("--create", help="Create the --zoo if it does not exist.")]

# `zoolens analyze`, `collect`, `predict`: an existing Ray cluster.
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        metavar="ADDRESS",
        help="Ray cluster to connect to (implies --ray), e.g. auto or ray://head:10001.",
    ),
]
