"""Fashion-MNIST for the demo: read the IDX files, from Debian, a folder or torchvision.

Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 70,000 28x28 grey-scale images of clothing in
10 classes, 60,000 for training and 10,000 for testing. The demo always evaluates on the full
10,000 test images; training may use a seeded subsample of the training images (the same
subsample for every model that is compared).

Where the files are looked for, in order:
1. ``--data DIR`` (the four ``*-ubyte.gz`` files, or the same names without ``.gz``); when a
   folder is given explicitly, nothing else is tried;
2. Debian's ``dataset-fashion-mnist`` package: ``/usr/share/datasets/fashion-mnist/``;
3. torchvision's downloader into ``~/.cache/zoolens/fashion-mnist`` (needs a network).
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoolens.errors import ZoolensError

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
# Class groups for the specialization study (the paper contrasts ImageNet's "nature" and
# "anthropogenic" classes, Fig. 12): garments worn on the upper body, footwear, and the rest.
CLASS_GROUPS = {"tops": [0, 2, 4, 6], "footwear": [5, 7, 9], "other": [1, 3, 8]}
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
HOW_TO_GET = (
    "install it with `sudo apt-get install dataset-fashion-mnist` (files in "
    "/usr/share/datasets/fashion-mnist) or pass --data DIR holding "
    "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz"
)


@dataclass(frozen=True)
class FashionMNIST:
    """The dataset in memory: uint8 images (N, 28, 28) and int64 labels (N,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str  # folder (or "torchvision:<folder>") the files were read from

    @property
    def fingerprint(self) -> str:
        """sha256 (first 16 hex digits) over all four arrays: the cache key's data part."""
        digest = hashlib.sha256()
        for array in (self.train_images, self.train_labels, self.test_images, self.test_labels):
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:16]

    def subsample(self, n: int, seed: int = 0) -> np.ndarray:
        """Sorted indices of a seeded random subset of ``n`` training images (all if n >= 60k)."""
        total = len(self.train_labels)
        if n >= total:
            return np.arange(total)
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(total, size=n, replace=False))


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (LeCun's MNIST format; gzip or plain) into a numpy array.

    Format: two zero bytes, a type code (0x08 = uint8), the number of dimensions d, then d
    big-endian uint32 sizes and the data in C order.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise ZoolensError(f"{path}: cannot read Fashion-MNIST file ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ZoolensError(f"{path}: not an IDX uint8 file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != int(np.prod(shape)):
        raise ZoolensError(
            f"{path}: truncated IDX file ({data.size} values, header says {int(np.prod(shape))})"
        )
    return data.reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_folder(folder: Path) -> FashionMNIST | None:
    paths = {key: _find(folder, stem) for key, stem in FILES.items()}
    if any(p is None for p in paths.values()):
        return None
    arrays = {key: read_idx(p) for key, p in paths.items()}  # type: ignore[arg-type]
    data = FashionMNIST(
        arrays["train_images"],
        arrays["train_labels"].astype(np.int64),
        arrays["test_images"],
        arrays["test_labels"].astype(np.int64),
        source=str(folder),
    )
    _validate(data, folder)
    return data


def _validate(data: FashionMNIST, where: Path | str) -> None:
    expect = {
        "train_images": (60000, 28, 28),
        "train_labels": (60000,),
        "test_images": (10000, 28, 28),
        "test_labels": (10000,),
    }
    for key, shape in expect.items():
        got = getattr(data, key).shape
        if got != shape:
            raise ZoolensError(f"{where}: {FILES[key]} has shape {got}, Fashion-MNIST has {shape}")
    for key in ("train_labels", "test_labels"):
        labels = getattr(data, key)
        if labels.min() < 0 or labels.max() > 9:
            raise ZoolensError(f"{where}: {FILES[key]} has labels outside 0..9")


def _torchvision(root: Path) -> FashionMNIST | None:
    """Download through torchvision (needs a network); None when that fails."""
    try:
        from torchvision.datasets import FashionMNIST as TV
    except ImportError:
        return None
    try:
        TV(str(root), train=True, download=True)
        TV(str(root), train=False, download=True)
    except Exception:  # noqa: BLE001 - any network/IO failure means "not available"
        return None
    return _read_folder(root / "FashionMNIST" / "raw")


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None, *, allow_download: bool = True
) -> FashionMNIST:
    """Load Fashion-MNIST from ``data_dir``, else Debian's package, else torchvision.

    Raises ZoolensError with one line saying how to get the data when nothing works.
    """
    if data_dir is not None:
        folder = Path(data_dir)
        if not folder.is_dir():
            raise ZoolensError(f"--data {folder}: no such folder; {HOW_TO_GET}")
        data = _read_folder(folder)
        if data is None:
            raise ZoolensError(
                f"--data {folder}: Fashion-MNIST files not found there; {HOW_TO_GET}"
            )
        return data
    env = os.environ.get("ZOOLENS_FASHION_MNIST")
    candidates = ([Path(env)] if env else []) + [DEBIAN_DIR]
    for folder in candidates:
        if folder.is_dir():
            data = _read_folder(folder)
            if data is not None:
                return data
    if allow_download:
        data = _torchvision(Path.home() / ".cache" / "zoolens" / "fashion-mnist")
        if data is not None:
            return data
    raise ZoolensError(f"Fashion-MNIST not found; {HOW_TO_GET}")
