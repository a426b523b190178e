"""Small example model outputs shipped with zoolens, for the README's Quick start.

``python -m zoolens.examples`` prints this folder. The files are *synthetic* (made by
``_make.py`` from a fixed seed, not by trained networks): 2,000 examples of 10 classes, the
outputs of four imaginary models in four of the formats ``zoolens import`` reads, with a
shared per-example difficulty so that the models err on partly the same examples:

- ``labels.npy``        (2000,) int64 true classes
- ``resnet.npz``        key ``logits``: (2000, 10) float16 logits ("resnet50", seed 0)
- ``resnet-seed1.npz``  the same architecture, another seed (a Reinit pair with resnet)
- ``vit.csv``           (2000, 10) probabilities, no header (another architecture)
- ``knn.npy``           (2000,) int64 decisions only (a classical k-NN: no probabilities)

``shift/`` holds the same four models' outputs on a second, harder evaluation set of 1,000
examples (the same ten classes), for the README's shift study (``analyze --shift``).

``collect/`` holds three tiny CNNs saved as TorchScript (``tiny-a.pt``, ``tiny-b.pt``,
``tiny-c.pt``, a few KB each: a seeded random convolution and a least-squares head, made by
``_make.py``), the model list that names them (``models.toml``: the ``[[models]]`` format of
``zoolens collect``) and 32 small images in ``images/<class>/<k>.png`` (four colour
classes), for the README's collect / export / predict walk-through.

For real models, use ``zoolens demo`` (trains a small zoo on Fashion-MNIST) or your own files.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent


def path() -> Path:
    """The folder holding the example files."""
    return FOLDER
