"""Full-size smoke test: one training step of every paper config — the deep-stem ResNet-101 loaded from a state dict in
UniMatch's `resnet101.pth` layout, the paper's crop (Pascal 321, Cityscapes 801, COCO 513), fixture images laid out as
`data_scripts/` writes them — gives a finite loss and gradient.

At the full crops the steps take minutes on 2 CPU cores: they form the `long` tier (`make test-long`; on a GPU machine
`python -m csl_nb.speed memory` runs the same steps at the paper's batch). `make test` runs the same code at a 33-pixel
crop (`test_the_same_steps_at_a_small_crop`).

Each full-size step runs in a process of its own, so that one config's memory is returned before the next starts."""
import json, math, subprocess, sys
import pytest

from csl_nb.speed import paper_step

CONFIGS = [("pascal_classic", 321, 8), ("cityscapes", 801, 16), ("coco", 513, 16)]
SMALL_CROP = 33


def run_step(tmp_path, config, batch, method):
    code = ("import json, pathlib; from csl_nb.speed import paper_step; "
            f"print(json.dumps(paper_step({config!r}, pathlib.Path({str(tmp_path)!r}), {batch}, {method!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def finite_step(step) -> bool:
    values = [step["loss"], step["grad_norm"], *step["terms"].values()]
    return step["loss"] > 0 and step["grad_norm"] > 0 and all(map(math.isfinite, values))


@pytest.mark.long
@pytest.mark.parametrize("config, crop, stride", CONFIGS)
def test_one_unimatch_step_of_each_paper_config_at_batch_one(tmp_path, config, crop, stride):
    step = run_step(tmp_path, config, 1, "unimatch")
    assert (step["crop"], step["output_stride"], step["batch"]) == (crop, stride, 1)
    assert finite_step(step)


@pytest.mark.long
def test_one_csl_step_of_the_pascal_config(tmp_path):
    "CSL's u′ pass runs in train mode, so one process needs 2 images per batch (BatchNorm after ASPP's pooling): 2 + 2."
    step = run_step(tmp_path, "pascal_classic", 2, "csl")
    assert sorted(step["terms"]) == ["fp", "m", "s", "x"]
    assert finite_step(step)


@pytest.mark.slow
def test_the_same_steps_at_a_small_crop(tmp_path):
    """The long tier's code at a 33-pixel crop: CSL's step on Pascal at 2 + 2 (91_speed runs UniMatch's, at 1 + 1). The other
    configs differ only in the numbers of their YAML files, which other tests load and check."""
    step = paper_step("pascal_classic", tmp_path, 2, "csl", overrides={"augment.crop": SMALL_CROP})
    assert (step["crop"], step["output_stride"], step["batch"]) == (SMALL_CROP, 8, 2) and finite_step(step), step
    assert sorted(step["terms"]) == ["fp", "m", "s", "x"]
