"""Full-size smoke test: one training step of every paper config — the deep-stem ResNet-101 loaded from a state dict in
UniMatch's `resnet101.pth` layout, the paper's crop (Pascal 321, Cityscapes 801, COCO 513), fixture images laid out as
`data_scripts/` writes them — gives a finite loss and gradient. Slow (minutes on 2 CPU cores): `make test-fast` skips it.

Each step runs in a process of its own, so that one config's memory is returned before the next starts."""
import json, subprocess, sys
import pytest

pytestmark = pytest.mark.full_size


def run_step(tmp_path, config, batch, method):
    code = ("import json, pathlib; from csl_nb.speed import paper_step; "
            f"print(json.dumps(paper_step({config!r}, pathlib.Path({str(tmp_path)!r}), {batch}, {method!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("config, crop, stride", [("pascal_classic", 321, 8), ("cityscapes", 801, 16), ("coco", 513, 16)])
def test_one_unimatch_step_of_each_paper_config_at_batch_one(tmp_path, config, crop, stride):
    step = run_step(tmp_path, config, 1, "unimatch")
    assert (step["crop"], step["output_stride"], step["batch"]) == (crop, stride, 1)
    assert step["loss"] > 0 and step["grad_norm"] > 0
    assert all(map(lambda v: v == v and abs(v) != float("inf"), [step["loss"], step["grad_norm"], *step["terms"].values()]))


def test_one_csl_step_of_the_pascal_config(tmp_path):
    "CSL's u′ pass runs in train mode, so one process needs 2 images per batch (BatchNorm after ASPP's pooling): 2 + 2."
    step = run_step(tmp_path, "pascal_classic", 2, "csl")
    assert sorted(step["terms"]) == ["fp", "m", "s", "x"]
    assert step["loss"] > 0 and step["grad_norm"] > 0 and step["grad_norm"] == step["grad_norm"]
