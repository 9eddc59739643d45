"""The loader's answers to bad data on disk, and its start-up on a large split."""
import numpy as np
import pytest
from PIL import Image

from csl_nb.datasets import SemiDataset, AugmentConfig, read_split, benchmark_datasets


def image_file(path, shape=(8, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(shape + (3,), 90, np.uint8)).save(path)
    return path.name


def mask_file(path, values):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(values, np.uint8)).save(path)


CONFIG = AugmentConfig(crop=8, tmp_block=4)


@pytest.mark.parametrize("mode", ["labeled", "unlabeled", "val"])
def test_corrupt_image_is_named(tmp_path, mode):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    mask_file(tmp_path / "m.png", np.zeros((8, 10)))
    with pytest.raises(ValueError, match=r"bad\.jpg: cannot read image"):
        SemiDataset(tmp_path, [("bad.jpg", "m.png")], mode, 3, CONFIG)[0]


def test_labels_outside_classes_are_named(tmp_path):
    image_file(tmp_path / "a.png"); mask_file(tmp_path / "m.png", np.full((8, 10), 40))
    with pytest.raises(ValueError, match=r"m\.png: labels \[40\] outside \[0, 21\)"):
        SemiDataset(tmp_path, [("a.png", "m.png")], "labeled", 21, CONFIG)[0]


def test_mismatched_sizes_are_named(tmp_path):
    image_file(tmp_path / "a.png", (8, 10)); mask_file(tmp_path / "m.png", np.zeros((8, 9)))
    with pytest.raises(ValueError, match=r"m\.png: mask is \(8, 9\) but its image is \(8, 10\)"):
        SemiDataset(tmp_path, [("a.png", "m.png")], "val", 3, CONFIG)[0]


def test_empty_split_and_missing_folder(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="empty"): read_split(tmp_path / "empty.txt")
    with pytest.raises(ValueError, match="the split is empty"): SemiDataset(tmp_path, [], "labeled", 3)
    with pytest.raises(FileNotFoundError, match="data folder .* does not exist"):
        SemiDataset(tmp_path / "nowhere", [("a.png", None)], "labeled", 3)


def test_missing_files_listed_before_training(tmp_path):
    from csl_nb.datasets import split_pairs
    first_image = split_pairs("pascal", "92", "labeled")[0][0]
    with pytest.raises(FileNotFoundError, match=rf"pascal 92 labeled split: 184 file\(s\) .* first: \['{first_image}'"):
        benchmark_datasets("pascal", "92", tmp_path)


def test_large_split_starts_without_opening_images(tmp_path):
    # 10 000 ids whose files exist but are empty: construction must not decode any of them
    (tmp_path / "img").mkdir()
    for i in range(10_000): (tmp_path / "img" / f"{i}.png").touch()
    dataset = SemiDataset(tmp_path, [(f"img/{i}.png", None) for i in range(10_000)], "unlabeled", 3, CONFIG)
    assert len(dataset) == 10_000
    with pytest.raises(ValueError, match="cannot read image"): dataset[0]


def test_unlabeled_without_ground_truth(tmp_path):
    image_file(tmp_path / "a.png", (6, 6))
    sample = SemiDataset(tmp_path, [("a.png", None)], "unlabeled", 3, CONFIG)[0]
    assert (sample["truth"] == 255).all() and sample["valid"].any()
