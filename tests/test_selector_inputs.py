"""Bad input and defined corner cases of the public selector API, beyond the notebooks' examples."""
import pytest
import torch

import csl_nb


def softmax_batch(B=2, K=5, H=6, W=7, dtype=torch.float32):
    return torch.softmax(3 * torch.randn(B, K, H, W, generator=torch.Generator().manual_seed(1)), 1).to(dtype)


@pytest.mark.parametrize("api", [csl_nb.csl_weights, csl_nb.threshold_weights, csl_nb.confidence_features])
def test_every_entry_point_checks_its_input(api):
    probs, valid = softmax_batch(), torch.ones(2, 6, 7, dtype=torch.bool)
    with pytest.raises(ValueError, match="B×K×H×W"): api(probs[0], valid)
    with pytest.raises(TypeError, match="valid must be a bool"): api(probs, valid.int())
    with pytest.raises(ValueError, match="shape"): api(probs, valid.transpose(1, 2))
    with pytest.raises(ValueError, match="sum to 1"): api(probs * 0.5, valid)
    with pytest.raises(TypeError, match="torch.Tensor"): api(probs.numpy(), valid)
    with pytest.raises(ValueError, match="B×K×H×W"): api(torch.tensor(0.5), valid)


@pytest.mark.parametrize("confidence_scaling", [False, True])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_selection_matches_float32(dtype, confidence_scaling):
    "Autocast outputs: the selection of bf16/fp16 probabilities agrees with the float32 selection of the same softmax."
    g = torch.Generator().manual_seed(0)
    logits = 15 * torch.nn.functional.avg_pool2d(torch.randn(4, 21, 65, 65, generator=g), 5, 1, 2)
    probs, valid = torch.softmax(logits, 1), torch.ones(4, 65, 65, dtype=torch.bool)
    w32 = csl_nb.csl_weights(probs, valid, confidence_scaling=confidence_scaling)
    w16 = csl_nb.csl_weights(probs.to(dtype), valid, confidence_scaling=confidence_scaling)
    assert w16.dtype == torch.float32 and w16.shape == (4, 65, 65)
    assert ((w16 == 1) == (w32 == 1)).float().mean() >= 0.99
    assert (w16 - w32).abs().mean() <= 1e-2


def test_all_padding_batch_is_all_zero_weights():
    probs, valid = softmax_batch(), torch.zeros(2, 6, 7, dtype=torch.bool)
    probs[:, :, 0, 0] = float("nan")  # padding may hold anything
    assert torch.equal(csl_nb.csl_weights(probs, valid), torch.zeros(2, 6, 7))
    assert torch.equal(csl_nb.threshold_weights(probs, valid), torch.zeros(2, 6, 7))


def test_exact_ties_at_the_top_match_the_reference():
    probs = torch.tensor([0.4, 0.4, 0.1, 0.1], dtype=torch.float64).view(1, 4, 1, 1).repeat(2, 1, 3, 3)
    probs[:, :, 0] = torch.tensor([0.7, 0.1, 0.1, 0.1], dtype=torch.float64).view(1, 4, 1)
    valid = torch.ones(2, 3, 3, dtype=torch.bool)
    for dispersion in ("reference", "exact"):
        for scaling in (False, True):
            torch.testing.assert_close(csl_nb.csl_weights(probs, valid, dispersion=dispersion, confidence_scaling=scaling),
                                       csl_nb.reference_csl_weights(probs, valid, dispersion=dispersion, confidence_scaling=scaling), atol=1e-9, rtol=0)


def test_selection_is_invariant_to_padding_contents():
    probs, valid = softmax_batch(dtype=torch.float64), torch.ones(2, 6, 7, dtype=torch.bool)
    valid[:, :, 5:] = False
    other = probs.clone()
    other[:, :, :, 5:] = torch.softmax(torch.randn(2, 5, 6, 2, dtype=torch.float64), 1)
    assert torch.equal(csl_nb.csl_weights(probs, valid), csl_nb.csl_weights(other, valid))
