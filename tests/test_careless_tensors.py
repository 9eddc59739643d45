"""Careless input to the pure tensor functions (issue 38, items 7 and 11): what each call now says or returns.

The audit on batches with nothing to score, τ and the ignore label, the selector's options and dimension order, the
(c, r) figures of an image without valid pixels, and TMP's block mask and `hide_reliable`."""
import json
import math

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import csl_nb
from csl_nb.audit import (IGNORE, SELECTION_SETS, audit, equal_coverage, json_safe, plot_selection_quality, precision_coverage,
                          selection_quality_markdown)
from csl_nb.dispersion import csl_select, plot_feature_scatter, plot_selection
from csl_nb.trusted_mask import block_mask, hide_reliable


def softmax_batch(B=2, K=3, H=8, W=8, seed=0):
    return torch.softmax(3 * torch.randn(B, K, H, W, generator=torch.Generator().manual_seed(seed)), 1)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# --- 7. audit: a batch with no pixel to score --------------------------------------------------------------------------

def no_pixel_cases():
    probs = softmax_batch()
    labels = probs.argmax(1)
    return {"every label ignored": (probs, torch.full_like(labels, IGNORE), None),
            "valid all False": (probs, labels, torch.zeros(2, 8, 8, dtype=torch.bool))}


@pytest.mark.parametrize("case", ["every label ignored", "valid all False"])
def test_audit_with_no_pixel_to_score_gives_dashes_and_json_nulls(case):
    probs, labels, valid = no_pixel_cases()[case]
    result = audit(probs, labels, valid)
    assert all(len(curve) == 0 for part in result.curves.values() for curve in part)   # empty curves
    assert all(math.isnan(v) for s in result.scores.values() for v in s.values())
    text = result.to_json()
    assert "NaN" not in text and json.loads(text)[SELECTION_SETS[0]] == dict.fromkeys(("coverage", "precision", "foreground_coverage", "foreground_precision"))
    assert "No pixel to score" in result.markdown() and "| — | — | — | — |" in result.markdown()
    texts = [t.get_text() for ax in result.figure().axes for t in ax.texts]
    assert texts == ["no pixel to score"] * 2


def test_audit_of_background_only_scores_all_pixels_and_says_no_foreground():
    probs = softmax_batch()
    result = audit(probs, torch.zeros(2, 8, 8, dtype=torch.long))
    assert len(result.curves["all"][0]) and not len(result.curves["foreground"][0])
    assert result.scores[SELECTION_SETS[0]]["coverage"] > 0
    assert json.loads(result.to_json())[SELECTION_SETS[0]]["foreground_precision"] is None
    assert "No foreground pixel to score" in result.markdown()
    result.figure()


def test_precision_coverage_of_no_pixel_is_an_empty_curve():
    probs = softmax_batch()
    coverage, precision = precision_coverage(probs, torch.full((2, 8, 8), IGNORE))
    assert coverage.shape == precision.shape == (0,)


@pytest.mark.parametrize("shape, message", [((0, 3, 8, 8), "probs holds no image (shape (0, 3, 8, 8))"),
                                            ((2, 3, 0, 8), "probs holds no pixel (shape (2, 3, 0, 8))")])
def test_audit_of_an_empty_batch_is_refused(shape, message):
    probs = torch.full(shape, 1 / 3)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        audit(probs, torch.zeros(shape[:1] + shape[2:], dtype=torch.long))


def test_json_safe_turns_nan_and_inf_into_null():
    value = {"a": float("nan"), "b": [1.0, float("inf"), np.float32("nan")], "c": np.array([0.5, np.nan]), "d": (1, "x")}
    assert json_safe(value) == {"a": None, "b": [1.0, None, None], "c": [0.5, None], "d": [1, "x"]}
    json.dumps(json_safe(value), allow_nan=False)


def test_scores_read_back_from_json_still_draw():
    "The benchmark reloads saved scores (None where NaN was) and draws them again."
    result = audit(softmax_batch(), torch.zeros(2, 8, 8, dtype=torch.long))
    scores = {"m": json.loads(result.to_json())}
    plot_selection_quality(scores, {"m": result.curves})
    assert "| m | CSL reliable (w = 1) |" in selection_quality_markdown(scores)


# --- 7. audit: tau, the ignore label, the model name -------------------------------------------------------------------

@pytest.mark.parametrize("tau", [0, -0.5, 1.5, float("nan"), "0.9", True])
def test_audit_refuses_tau_outside_0_1(tau):
    probs = softmax_batch()
    with pytest.raises(ValueError, match=r"tau must be a number in \(0, 1\], got"):
        audit(probs, probs.argmax(1), tau=tau)
    with pytest.raises(ValueError, match=r"tau must be a number in \(0, 1\]"):
        equal_coverage(probs, probs.argmax(1), csl_select(probs, torch.ones(2, 8, 8, dtype=torch.bool)), tau)


@pytest.mark.parametrize("tau", [1, 0.9, np.float64(0.9), torch.tensor(0.9, dtype=torch.float64)])
def test_audit_accepts_tau_in_0_1_as_any_real_scalar(tau):
    probs = softmax_batch()
    scores = audit(probs, probs.argmax(1), tau=tau).scores
    assert list(scores)[-1] == f"c ≥ {1 if tau == 1 else 0.9}"


def test_audit_with_256_classes_or_more_refuses_255_as_the_ignore_label():
    probs = softmax_batch(B=1, K=300, H=4, W=4)
    labels = torch.full((1, 4, 4), 255)   # a real class here
    with pytest.raises(ValueError, match=r"ignore=255 is one of the K=300 classes .* pass an ignore label outside \[0, 300\), e.g. ignore=-1"):
        audit(probs, labels)
    result = audit(probs, labels, ignore=-1)
    assert result.scores[SELECTION_SETS[0]]["coverage"] > 0      # class 255 is scored
    labels[0, 0, 0] = -1
    assert audit(probs, labels, ignore=-1).scores[SELECTION_SETS[0]]["coverage"] <= 15 / 16   # -1 counts nowhere


def test_a_bar_in_the_model_name_does_not_break_the_table():
    probs = softmax_batch()
    table = audit(probs, probs.argmax(1)).markdown("resnet|large")
    rows = [line for line in table.splitlines() if line.startswith("| resnet")]
    assert rows and all(line.startswith(r"| resnet\|large | ") for line in rows)
    assert all(line.replace(r"\|", "").count("|") == 7 for line in rows)   # six cells, as in the header


def test_audit_of_channels_last_probs_names_the_permutation():
    probs = softmax_batch()
    with pytest.raises(ValueError, match=r"looks like B×H×W×K \(channels last\): pass probs.permute\(0, 3, 1, 2\)"):
        audit(probs.permute(0, 2, 3, 1), probs.argmax(1))


# --- 11. the selector's input checks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("api", [csl_nb.csl_weights, csl_nb.csl_select, csl_nb.threshold_weights, csl_nb.confidence_features])
def test_channels_last_probs_get_the_permutation_in_the_error(api):
    probs, valid = softmax_batch(K=21, H=16, W=12), torch.ones(2, 16, 12, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"probs looks like B×H×W×K \(channels last\): pass probs.permute\(0, 3, 1, 2\)"):
        api(probs.permute(0, 2, 3, 1), valid)


def test_a_wrong_valid_shape_alone_gets_no_permutation_hint():
    probs = softmax_batch()
    with pytest.raises(ValueError) as error:
        csl_nb.csl_weights(probs, torch.ones(2, 8, 7, dtype=torch.bool))
    assert "valid must have shape (2, 8, 8)" in str(error.value) and "permute" not in str(error.value)


@pytest.mark.parametrize("alpha", [np.float64(0.5), np.float32(0.5), torch.tensor(0.5), torch.tensor(0.5, dtype=torch.float64)])
def test_alpha_as_numpy_or_0d_tensor_equals_the_float(alpha):
    probs, valid = softmax_batch(), torch.ones(2, 8, 8, dtype=torch.bool)
    assert torch.equal(csl_nb.csl_weights(probs, valid, alpha=alpha), csl_nb.csl_weights(probs, valid, alpha=0.5))
    assert torch.equal(csl_nb.csl_select(probs, valid, confidence_scaling=True, scale=np.float32(2)).weights,
                       csl_nb.csl_select(probs, valid, confidence_scaling=True, scale=2.0).weights)


@pytest.mark.parametrize("alpha, shown", [(torch.tensor(0.0), "tensor(0.)"), (np.float64(-1), "np.float64(-1.0)"),
                                          (torch.tensor(float("inf")), "tensor(inf)"), (np.float32("nan"), "nan"),
                                          (True, "True"), (torch.tensor([8.0]), "tensor([8.])"), ("8", "'8'")])
def test_alpha_not_finite_positive_is_refused_showing_the_value(alpha, shown):
    probs, valid = softmax_batch(), torch.ones(2, 8, 8, dtype=torch.bool)
    with pytest.raises(ValueError, match="alpha must be a finite number > 0, got") as error:
        csl_nb.csl_weights(probs, valid, alpha=alpha)
    assert shown in str(error.value)


# --- 11. the (c, r) figures of an image without valid pixels -----------------------------------------------------------

def test_plot_selection_of_an_image_without_valid_pixels_draws_an_empty_panel():
    probs, valid = softmax_batch(), torch.ones(2, 8, 8, dtype=torch.bool)
    valid[1] = False
    selection = csl_select(probs, valid)
    for correct in (None, probs.argmax(1) == 0):
        ax = plot_selection(selection, image=1, correct=correct)
        ax.figure.canvas.draw()   # was: matplotlib's "Invalid vmin or vmax"
        assert [t.get_text() for t in ax.texts] == ["no valid pixel"] and ax.get_title() == "image 1: no valid pixel"
    plot_selection(selection, image=0).figure.canvas.draw()   # the valid image still draws


@pytest.mark.parametrize("conf, disp", [(torch.zeros(0), torch.zeros(0)), (torch.full((4,), float("nan")), torch.full((4,), float("nan")))])
def test_plot_feature_scatter_without_pixels_draws_an_empty_panel(conf, disp):
    ax = plot_feature_scatter(conf, disp, None, title="empty")
    ax.figure.canvas.draw()
    assert [t.get_text() for t in ax.texts] == ["no valid pixel"] and ax.get_title() == "empty"


# --- 11. block_mask and hide_reliable --------------------------------------------------------------------------------

def test_block_mask_on_the_cpu_is_unchanged_by_device_none_or_cpu():
    draw = lambda **kw: block_mask(65, 8, 0.7, torch.Generator().manual_seed(3), **kw)
    assert torch.equal(draw(), draw(device="cpu")) and draw(device="cpu").device.type == "cpu"
    assert draw(device="meta").device.type == "meta" and draw(device="meta").dtype == torch.bool


@pytest.mark.parametrize("size, block", [(64.0, 8), (np.int64(64), 8.0), (64, np.float32(8))])
def test_block_mask_takes_integral_floats(size, block):
    assert torch.equal(block_mask(size, block, generator=torch.Generator().manual_seed(0)),
                       block_mask(64, 8, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("kwargs, message", [(dict(size=32.5), "size must be a whole number of pixels, got 32.5"),
                                             (dict(size=32, block=7.5), "block must be a whole number of pixels, got 7.5"),
                                             (dict(size=float("nan")), "size must be a whole number of pixels, got nan"),
                                             (dict(size="32"), "size must be a whole number of pixels, got '32'"),
                                             (dict(size=True), "size must be a whole number of pixels, got True")])
def test_block_mask_refuses_fractional_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        block_mask(**kwargs)


def hide_inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 8, 8, generator=g), torch.rand(2, 8, 8, generator=g) > 0.5, torch.rand(2, 8, 8, generator=g) > 0.5


@pytest.mark.parametrize("which", [0, 1, 2])
def test_hide_reliable_names_a_numpy_argument(which):
    inputs = list(hide_inputs())
    inputs[which] = inputs[which].numpy()
    name = ("views", "block_masks", "reliable")[which]
    with pytest.raises(TypeError, match=f"{name} must be a torch.Tensor, got numpy.ndarray"):
        hide_reliable(*inputs)


def test_hide_reliable_names_the_devices_that_differ():
    views, blocks, reliable = hide_inputs()
    with pytest.raises(ValueError, match="must be on one device, got views on cpu, block_masks on meta, reliable on cpu"):
        hide_reliable(views, blocks.to("meta"), reliable)


def test_hide_reliable_names_a_mask_that_is_not_bool():
    views, blocks, reliable = hide_inputs()
    with pytest.raises(TypeError, match="reliable must be a bool tensor, got torch.float32"):
        hide_reliable(views, blocks, reliable.float())
    with pytest.raises(TypeError, match="block_masks must be a bool tensor, got torch.int64"):
        hide_reliable(views, blocks.long(), reliable)
