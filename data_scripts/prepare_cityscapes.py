#!/usr/bin/env python
"""Prepare Cityscapes (19 classes, 255 = ignore) from the official archives.

    python data_scripts/prepare_cityscapes.py --images leftImg8bit_trainvaltest.zip --labels gtFine_trainvaltest.zip --out data/cityscapes

Writes leftImg8bit/{train,val}/CITY/*_leftImg8bit.png and gtFine/{train,val}/CITY/*_gtFine_labelTrainIds.png, converting
gtFine's *_labelIds.png with the official id → trainId table (torchvision's Cityscapes.classes; every other id → 255).
Cityscapes publishes no checksum for its archives: their integrity is checked by the zip's CRCs while extracting.
"""
import argparse
from pathlib import Path
import numpy as np
from PIL import Image
from torchvision.datasets import Cityscapes
from tqdm.auto import tqdm
from archive_tools import PreparationError, common_arguments, archive_members, decode_image, extract, report_layout, run, verify_archive

SPLITS = ("train", "val")


def train_id_table() -> np.ndarray:
    "Lookup table from Cityscapes label id (0–255) to train id, 255 for ignored ids."
    table = np.full(256, 255, np.uint8)
    for c in Cityscapes.classes:
        if c.id >= 0 and 0 <= c.train_id < 255: table[c.id] = c.train_id
    return table


def image_destination(name: str):
    "leftImg8bit/{train,val}/… members, kept as they are."
    parts = name.split("/")
    return name if len(parts) >= 3 and parts[0] == "leftImg8bit" and parts[1] in SPLITS and name.endswith("_leftImg8bit.png") else None


def convert_labels(labels: Path, out: Path) -> int:
    "Write *_gtFine_labelTrainIds.png for every train/val *_gtFine_labelIds.png; return how many."
    table, count = train_id_table(), 0
    for name, read in tqdm(archive_members(labels), desc="gtFine", unit=" files"):
        parts = name.split("/")
        if len(parts) < 3 or parts[0] != "gtFine" or parts[1] not in SPLITS or not name.endswith("_gtFine_labelIds.png"): continue
        ids = decode_image(read(), name, labels)
        target = out / name.replace("_gtFine_labelIds.png", "_gtFine_labelTrainIds.png")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(table[ids]).save(target)
        count += 1
    return count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, required=True, help="leftImg8bit_trainvaltest.zip")
    parser.add_argument("--labels", type=Path, required=True, help="gtFine_trainvaltest.zip")
    common_arguments(parser, checksum=False)
    args = parser.parse_args(argv)
    images = verify_archive(args.images, "leftImg8bit_trainvaltest.zip")
    labels = verify_archive(args.labels, "gtFine_trainvaltest.zip")
    copied = extract(images, args.out, image_destination, "leftImg8bit")
    if not copied: raise PreparationError(f"{images}: no leftImg8bit/train or leftImg8bit/val images inside")
    converted = convert_labels(labels, args.out)
    if not converted: raise PreparationError(f"{labels}: no gtFine/train or gtFine/val *_gtFine_labelIds.png inside")
    print(f"wrote {copied} images and {converted} train-id masks under {args.out}")
    report_layout(args.out, "cityscapes", args.strict)


if __name__ == "__main__":
    run(main)
