#!/usr/bin/env python
"""Prepare COCO 2017 with 81-class masks (0 = background, 1–80 = the things in category-id order, 255 = crowd).

    python data_scripts/prepare_coco.py --train train2017.zip --val val2017.zip \
        --annotations annotations_trainval2017.zip --out data/coco

Writes train2017/*.jpg, val2017/*.jpg and masks/*.png (one per image with at least one annotation, train and val), the
layout the community splits name. Masks are drawn from the instance annotations with pycocotools (`pip install
pycocotools`), larger objects first so that small ones stay visible; crowd regions become 255. This follows the community
preparation in spirit; pixel-level details of masks prepared elsewhere may differ. Archives are checked against their
published MD5 (--skip-checksum to skip). COCO's unlabelled lists are derived by the loader (train2017 minus labelled).
"""
import argparse, json
from pathlib import Path
import numpy as np
from PIL import Image
from tqdm.auto import tqdm
from archive_tools import PreparationError, common_arguments, archive_members, extract, report_layout, run, verify_archive

MD5 = {"train2017.zip": "cced6f7f71b7629ddf16f17bbcfab6b2", "val2017.zip": "442b8da7639aecaf257c1dceb8ba8c80",
       "annotations_trainval2017.zip": "f4bbac642086de4f52a3fdda2de5fa2c"}
CROWD = 255


def load_instances(annotations: Path) -> dict:
    "The instances_{train,val}2017.json documents of the annotation archive."
    found = {}
    for name, read in archive_members(annotations):
        for split in ("train2017", "val2017"):
            if name.endswith(f"instances_{split}.json"):
                found[split] = json.loads(read())
    if len(found) < 2: raise PreparationError(f"{annotations}: instances_train2017.json and instances_val2017.json not both inside")
    return found


def class_of_category(instances: dict) -> dict:
    "COCO category id → class index 1…80 (category-id order); 0 is background."
    return {c["id"]: i + 1 for i, c in enumerate(sorted(instances["categories"], key=lambda c: c["id"]))}


def draw_mask(image: dict, annotations: list, classes: dict) -> np.ndarray:
    "The class mask of one image: objects largest first, crowd regions 255."
    from pycocotools import mask as coco_mask
    height, width = image["height"], image["width"]
    mask = np.zeros((height, width), np.uint8)
    for ann in sorted(annotations, key=lambda a: -a["area"]):
        segmentation = ann["segmentation"]
        if isinstance(segmentation, list): rle = coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
        elif isinstance(segmentation["counts"], list): rle = coco_mask.frPyObjects(segmentation, height, width)
        else: rle = segmentation
        mask[coco_mask.decode(rle).astype(bool)] = CROWD if ann.get("iscrowd") else classes[ann["category_id"]]
    return mask


def write_masks(instances: dict, out: Path) -> int:
    "Write masks/*.png for every annotated image of both splits; return how many."
    try: import pycocotools  # noqa: F401
    except ImportError: raise PreparationError("COCO masks need pycocotools: pip install pycocotools") from None
    (out / "masks").mkdir(parents=True, exist_ok=True)
    count = 0
    for split, document in instances.items():
        classes = class_of_category(document)
        by_image = {}
        for ann in document["annotations"]: by_image.setdefault(ann["image_id"], []).append(ann)
        for image in tqdm(document["images"], desc=f"masks {split}"):
            if image["id"] not in by_image: continue
            Image.fromarray(draw_mask(image, by_image[image["id"]], classes)).save(out / "masks" / f"{Path(image['file_name']).stem}.png")
            count += 1
    return count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, required=True, help="train2017.zip")
    parser.add_argument("--val", type=Path, required=True, help="val2017.zip")
    parser.add_argument("--annotations", type=Path, required=True, help="annotations_trainval2017.zip")
    common_arguments(parser, checksum=True)
    args = parser.parse_args(argv)
    archives = {name: verify_archive(getattr(args, key), name, MD5[name], args.skip_checksum)
                for key, name in (("train", "train2017.zip"), ("val", "val2017.zip"), ("annotations", "annotations_trainval2017.zip"))}
    images = 0
    for name in ("train2017.zip", "val2017.zip"):
        folder = name.removesuffix(".zip") + "/"
        images += extract(archives[name], args.out, lambda m, f=folder: m if m.startswith(f) and m.endswith(".jpg") else None, folder)
    if not images: raise PreparationError("no train2017/ or val2017/ .jpg images inside the image archives")
    masks = write_masks(load_instances(archives["annotations_trainval2017.zip"]), args.out)
    print(f"wrote {images} images and {masks} masks under {args.out}")
    report_layout(args.out, "coco", args.strict)


if __name__ == "__main__":
    run(main)
