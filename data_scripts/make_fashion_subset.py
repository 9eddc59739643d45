#!/usr/bin/env python
"""Write the Fashion-MNIST subset that the embedded benchmark is built from, as package data.

Reads the four standard IDX files (gzipped or not) from a folder — Debian's `dataset-fashion-mnist` installs them
in /usr/share/datasets/fashion-mnist/ (`apt-get install dataset-fashion-mnist`), torchvision's FashionMNIST keeps
them in FashionMNIST/raw/ — and writes a class-balanced subset (the first N images of each class, in file order)
to csl_nb/assets/fashion_subset.npz with its licence notice. Deterministic: the same files give the same bytes.

    python data_scripts/make_fashion_subset.py [--source DIR] [--train-per-class 1200] [--test-per-class 200]
"""
import argparse, gzip, io, zipfile
from pathlib import Path
import numpy as np

DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")
FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
LICENCE = ("Fashion-MNIST (c) 2017 Zalando SE, https://github.com/zalandoresearch/fashion-mnist, MIT licence. "
           "Subset: the first {train} training and {test} test images of each class, in file order.")


def find_idx(folder: Path, stem: str) -> Path:
    "The IDX file `stem` in `folder`, gzipped or not."
    for name in (stem + ".gz", stem):
        if (folder / name).is_file(): return folder / name
    raise FileNotFoundError(f"{folder}: no {stem}(.gz). Install Debian's dataset-fashion-mnist, or pass --source "
                            f"with the four Fashion-MNIST IDX files")


def read_idx(path: Path) -> np.ndarray:
    "An IDX array (uint8 data) from a file, gzipped or not, with its header checked."
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (bad magic {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)): raise ValueError(f"{path}: truncated ({data.size} bytes for shape {shape})")
    return data.reshape(shape)


def balanced_subset(images: np.ndarray, labels: np.ndarray, per_class: int) -> tuple:
    "The first `per_class` images of each class, kept in file order."
    keep = np.sort(np.concatenate([np.flatnonzero(labels == k)[:per_class] for k in range(len(CLASSES))]))
    if len(keep) < per_class * len(CLASSES): raise ValueError(f"fewer than {per_class} images in some class")
    return images[keep], labels[keep]


def write_npz(path: Path, arrays: dict):
    "A compressed .npz whose bytes depend only on the arrays (fixed zip timestamps)."
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO(); np.save(member, array, allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue(), compresslevel=9)
    path.write_bytes(buffer.getvalue())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder with the four IDX files")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "csl_nb" / "assets" / "fashion_subset.npz")
    parser.add_argument("--train-per-class", type=int, default=1200)
    parser.add_argument("--test-per-class", type=int, default=200)
    args = parser.parse_args(argv)
    try:
        data = {key: read_idx(find_idx(args.source, stem)) for key, stem in FILES.items()}
    except (FileNotFoundError, ValueError) as error:
        parser.exit(2, f"make_fashion_subset: error: {error}\n")
    train = balanced_subset(data["train_images"], data["train_labels"], args.train_per_class)
    test = balanced_subset(data["test_images"], data["test_labels"], args.test_per_class)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_npz(args.out, dict(train_images=train[0], train_labels=train[1], test_images=test[0], test_labels=test[1],
                             classes=np.array(CLASSES), licence=np.array(LICENCE.format(train=args.train_per_class, test=args.test_per_class))))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB): {len(train[0])} train, {len(test[0])} test images")


if __name__ == "__main__":
    main()
