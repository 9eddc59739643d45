"""Step parity: `train_step` against transcriptions of the reference steps written here from the formulas, the forward
calls and the losses (the authors' CSL step and UniMatch's `unimatch.py`), on one tiny model and one fixed batch.

Nothing of the package's step is reused on the reference side: not the selector, not the loss helpers, not the CutMix
paste, not the BatchNorm freezing. Both sides get the same model weights, the same batch and the same RNG state for the
feature-perturbation dropout; they must give the same total loss (|Δ| ≤ 1e-6) and the same gradients (per parameter
tensor, max |Δg| / max |g| ≤ 1e-5)."""
import copy, math
import pytest
import torch
import torch.nn.functional as F

from csl_nb.config import load_config
from csl_nb.train import build_datasets, first_batch, model_from_config, train_step

TINY = dict(dataset="embedded", model="deeplabv3plus-resnet18-light", pretrained=False, epochs=1, batch_size=3, iters_per_epoch=1,
            lr=0.01, progress=False, embedded=dict(labeled=4, unlabeled=8, val=4), augment=dict(crop=64, tmp_block=8))


# ---------- the reference side ----------
def reference_csl_weights(probs, valid, alpha=8.0, eps=1e-8):
    "CSL's weights image by image, in float64, as the authors' code computes them (n×2 SVD, reliable = larger mean c)."
    B, K, H, W = probs.shape
    weights = torch.zeros(B, H, W, dtype=torch.float64)
    for b in range(B):
        p = probs[b].permute(1, 2, 0)[valid[b]].double()
        c, label = p.max(1)
        zeroed = p.clone(); zeroed[torch.arange(len(p)), label] = 0        # the reference zeroes ŷ and sums over all K
        m = (1 - c) / (K - 1)
        v = ((zeroed - m[:, None]) ** 2).sum(1) / (K - 1)
        features = torch.stack([c, v], 1)
        u, _, _ = torch.linalg.svd(features, full_matrices=False)
        cluster = u.abs().argmax(1)
        means = [c[cluster == j].mean() if (cluster == j).any() else torch.tensor(-1.0, dtype=torch.float64) for j in (0, 1)]
        chosen = features[cluster == int(torch.stack(means).argmax())]
        mu, var = chosen.mean(0), chosen.var(0, unbiased=True)
        z_c, z_r = (c - mu[0]) / torch.sqrt(var[0] + eps), (mu[1] - v) / torch.sqrt(var[1] + eps)
        w = torch.where((z_c > 0) | (z_r > 0), torch.ones_like(c), torch.exp(-z_c ** 2 / alpha) * torch.exp(-z_r ** 2 / alpha))
        weights[b][valid[b]] = w
    return weights


def batchnorm_buffers(model):
    return {k: v.clone() for k, v in model.state_dict().items() if "running_" in k or "num_batches_tracked" in k}


def weighted_ce(logits, target, weight, ignore):
    "Σ CE·weight over pixels that are not ignored / their number (as `criterion_u` then the reference's division)."
    ce = F.cross_entropy(logits, target, reduction="none")
    return (ce * weight * (~ignore)).sum() / (~ignore).sum()


def reference_csl_loss(model, x, y, u, mix, alpha=8.0):
    "The authors' CSL step: u′ in train mode without touching BN statistics, [x; u_w] with FP, [u_s; x_m] likewise frozen."
    saved = batchnorm_buffers(model)
    with torch.no_grad():
        pred_mix = model(mix["weak"]).float()
    model.load_state_dict(saved, strict=False)
    ignore_mix = ~mix["valid"]
    w_mix = reference_csl_weights(pred_mix.softmax(1), mix["valid"], alpha).float()
    label_mix = pred_mix.argmax(1)

    preds, preds_fp = model(torch.cat([x, u["weak"]]), feature_perturbation=True)
    pred_x, pred_u = preds[:len(x)], preds[len(x):]
    pred_u = pred_u.detach().float()
    w_u = reference_csl_weights(pred_u.softmax(1), u["valid"], alpha).float()
    label_u = pred_u.argmax(1)
    reliable = w_u == 1

    img_m = u["tmp"].clone()
    img_m[(u["block"] & reliable).unsqueeze(1).expand_as(img_m)] = 0
    img_s = u["strong"].clone()
    box = u["cutmix"]
    img_s[box.unsqueeze(1).expand_as(img_s)] = mix["strong"][box.unsqueeze(1).expand_as(img_s)]
    after_weak = batchnorm_buffers(model)   # put back after backward: the graph holds the buffers this forward wrote
    pred_s, pred_m = model(torch.cat([img_s, img_m])).chunk(2)

    label_s, w_s, ignore_s = label_u.clone(), w_u.clone(), ~u["valid"]
    label_s[box], w_s[box], ignore_s[box] = label_mix[box], w_mix[box], ignore_mix[box]
    loss_x = F.cross_entropy(pred_x, y, ignore_index=255)
    loss_s = weighted_ce(pred_s, label_s, w_s, ignore_s)
    loss_m = weighted_ce(pred_m, label_u, w_u, ~u["valid"])
    loss_fp = weighted_ce(preds_fp[len(x):], label_u, w_u, ~u["valid"])
    loss = (loss_x + loss_s * 0.25 + loss_m * 0.25 + loss_fp * 0.5) / 2.0
    return loss, lambda: model.load_state_dict(after_weak, strict=False)


def reference_unimatch_loss(model, x, y, u, mix, conf_thresh):
    "UniMatch's step (its unimatch.py): u′ in eval mode, [x; u_w] with FP, [u_s1; u_s2], thresholded losses."
    with torch.no_grad():
        model.eval()
        pred_mix = model(mix["weak"]).detach()
        conf_mix, mask_mix = pred_mix.softmax(1).max(1)
    ignore_mix = torch.where(mix["valid"], 0, 255)
    img_s1, img_s2 = u["strong"].clone(), u["strong2"].clone()
    box1, box2 = u["cutmix"], u["cutmix2"]
    img_s1[box1.unsqueeze(1).expand(img_s1.shape) == 1] = mix["strong"][box1.unsqueeze(1).expand(img_s1.shape) == 1]
    img_s2[box2.unsqueeze(1).expand(img_s2.shape) == 1] = mix["strong2"][box2.unsqueeze(1).expand(img_s2.shape) == 1]
    model.train()
    preds, preds_fp = model(torch.cat((x, u["weak"])), feature_perturbation=True)
    pred_x, pred_u = preds.split([len(x), len(u["weak"])])
    pred_fp = preds_fp[len(x):]
    pred_s1, pred_s2 = model(torch.cat((img_s1, img_s2))).chunk(2)
    pred_u = pred_u.detach()
    conf_u, mask_u = pred_u.softmax(1).max(1)
    ignore = torch.where(u["valid"], 0, 255)

    def cutmixed(box):
        mask, conf, ign = mask_u.clone(), conf_u.clone(), ignore.clone()
        mask[box == 1], conf[box == 1], ign[box == 1] = mask_mix[box == 1], conf_mix[box == 1], ignore_mix[box == 1]
        return mask, conf, ign

    def unlabelled(pred, mask, conf, ign):
        loss = F.cross_entropy(pred, mask, reduction="none") * ((conf >= conf_thresh) & (ign != 255))
        return loss.sum() / (ign != 255).sum().item()

    loss_x = F.cross_entropy(pred_x, y, ignore_index=255)
    loss_s1, loss_s2 = unlabelled(pred_s1, *cutmixed(box1)), unlabelled(pred_s2, *cutmixed(box2))
    loss_fp = unlabelled(pred_fp, mask_u, conf_u, ignore)
    return (loss_x + loss_s1 * 0.25 + loss_s2 * 0.25 + loss_fp * 0.5) / 2.0, lambda: None


# ---------- the comparison ----------
def seeded_first_batch(cfg):
    datasets = build_datasets(cfg)
    torch.manual_seed(0)
    return first_batch(datasets, cfg)


def tiny_config(tmp_path, **changes):
    import yaml
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return load_config(path)


def package_side(model, batch, cfg):
    labeled, unlabeled, mixing = batch
    model.train(); model.zero_grad()
    torch.manual_seed(123)
    loss, _, selection = train_step(model, labeled, unlabeled, mixing, cfg, torch.device("cpu"), {"selector": 0.0})
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}, selection


def reference_side(model, batch, step, **options):
    labeled, unlabeled, mixing = batch
    model.train(); model.zero_grad()
    torch.manual_seed(123)
    loss, after_backward = step(model, labeled["image"], labeled["mask"], unlabeled, mixing, **options)
    loss.backward(); after_backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def assert_same_step(ours, theirs):
    (loss_a, grads_a), (loss_b, grads_b) = ours, theirs
    assert math.isfinite(loss_a.item()) and loss_a.item() > 0
    assert abs(loss_a.item() - loss_b.item()) <= 1e-6, (loss_a.item(), loss_b.item())
    for name, g in grads_b.items():
        scale = g.abs().max().clamp_min(1e-12)
        assert ((grads_a[name] - g).abs().max() / scale).item() <= 1e-5, name


def test_csl_step_matches_the_reference_transcription(tmp_path, cache):
    cfg = tiny_config(tmp_path, method="csl")
    batch = seeded_first_batch(cfg)
    torch.manual_seed(0)
    model = model_from_config(cfg)
    ours, reference = copy.deepcopy(model), copy.deepcopy(model)
    loss, grads, (_, _, weights, reliable, valid) = package_side(ours, batch, cfg)
    assert 0.05 < reliable[valid].float().mean() < 0.95              # a real selection: some pixels in, some out
    assert ((weights > 0) & (weights < 1)).any()                      # and soft weights below the reliable set
    assert_same_step((loss, grads), reference_side(reference, batch, reference_csl_loss, alpha=cfg.alpha))
    for (name, a), b in zip(ours.named_buffers(), reference.buffers()): assert torch.equal(a, b), name   # BN statistics too


@pytest.mark.parametrize("partial", [False, True], ids=["conf_thresh-0", "conf_thresh-median"])
def test_unimatch_step_matches_its_reference_transcription(tmp_path, cache, partial):
    cfg = tiny_config(tmp_path, method="unimatch", conf_thresh=0.0)
    batch = seeded_first_batch(cfg)
    torch.manual_seed(0)
    model = model_from_config(cfg)
    if partial:   # a threshold that keeps about half of the weak view's pixels, so that the 1[c ≥ τ] gate is exercised
        *_, (probs_u, _, _, _, valid_u) = package_side(copy.deepcopy(model), batch, cfg)   # the weak view's probabilities the gate reads
        cfg = tiny_config(tmp_path, method="unimatch", conf_thresh=float(probs_u.amax(1)[valid_u].median()))
    ours, reference = copy.deepcopy(model), copy.deepcopy(model)
    loss, grads, (_, _, weights, reliable, valid) = package_side(ours, batch, cfg)
    selected = reliable[valid].float().mean()
    assert (0.2 < selected < 0.8) if partial else selected == 1
    assert_same_step((loss, grads), reference_side(reference, batch, reference_unimatch_loss, conf_thresh=cfg.conf_thresh))
    for (name, a), b in zip(ours.named_buffers(), reference.buffers()): assert torch.equal(a, b), name


def test_the_parity_check_can_fail(tmp_path, cache):
    "One changed detail on the reference side — CSL's α = 2 (the later CoVar copy) instead of 8 — is caught."
    cfg = tiny_config(tmp_path, method="csl")
    batch = seeded_first_batch(cfg)
    torch.manual_seed(0)
    model = model_from_config(cfg)
    loss, grads, _ = package_side(copy.deepcopy(model), batch, cfg)
    with pytest.raises(AssertionError):
        assert_same_step((loss, grads), reference_side(copy.deepcopy(model), batch, reference_csl_loss, alpha=2.0))
