"""DPO invariants (Rafailov et al. 2023): log 2 at the start, the hand-computed example, gradient signs and size,
IPO / hinge fixed points, the reference really is the adapter-disabled model, and a tiny end-to-end run."""
import functools
import math

import pytest
import torch

from labs.models import adapters
from labs.finetune import dpo
from labs.runs import jobs
from labs.training import loop as training
from labs.data import preferences


def _logps(seed=0, B=5):
    g = torch.Generator().manual_seed(seed)
    return -torch.rand(B, generator=g) * 50, -torch.rand(B, generator=g) * 50


def test_policy_equal_to_reference_gives_log2_and_zero_rewards():
    chosen, rejected = _logps()
    out = dpo.preference_loss(chosen, rejected, chosen.clone(), rejected.clone(), beta=0.3)
    assert torch.allclose(out.losses, torch.full_like(out.losses, math.log(2)))
    assert torch.all(out.chosen_rewards == 0) and torch.all(out.rejected_rewards == 0)
    assert torch.all(out.accuracies == 0)  # a tie is not a correct ranking
    ipo = dpo.preference_loss(chosen, rejected, chosen, rejected, beta=0.25, variant="ipo")
    assert torch.allclose(ipo.losses, torch.full_like(ipo.losses, (1 / (2 * 0.25)) ** 2))
    hinge = dpo.preference_loss(chosen, rejected, chosen, rejected, beta=0.25, variant="hinge")
    assert torch.allclose(hinge.losses, torch.ones_like(hinge.losses))


def test_hand_computed_example():
    # policy moved +1 nat toward chosen and -1 nat away from rejected: h = 2; beta = 0.5 -> beta*h = 1
    out = dpo.preference_loss(torch.tensor([-10.0]), torch.tensor([-12.0]), torch.tensor([-11.0]),
                              torch.tensor([-11.0]), beta=0.5)
    assert out.losses.item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)  # -log sigmoid(1) = 0.3133
    assert out.chosen_rewards.item() == pytest.approx(0.5)
    assert out.rejected_rewards.item() == pytest.approx(-0.5)
    assert out.margins.item() == pytest.approx(1.0)
    assert out.accuracies.item() == 1.0
    assert dpo.preference_loss(torch.tensor([-10.0]), torch.tensor([-12.0]), torch.tensor([-11.0]),
                               torch.tensor([-11.0]), beta=0.5, variant="ipo").losses.item() == pytest.approx(1.0)
    assert dpo.preference_loss(torch.tensor([-10.0]), torch.tensor([-12.0]), torch.tensor([-11.0]),
                               torch.tensor([-11.0]), beta=0.5, variant="hinge").losses.item() == pytest.approx(0.0)


@pytest.mark.parametrize("beta", [0.05, 0.1, 0.5, 2.0])
def test_gradient_pushes_chosen_up_rejected_down_with_the_papers_weight(beta):
    chosen, rejected = _logps(1)
    noise_c, noise_r = _logps(2)
    ref_c, ref_r = chosen + noise_c / 25, rejected + noise_r / 25  # within ~2 nats: no saturated sigmoid
    chosen.requires_grad_(True)
    rejected.requires_grad_(True)
    out = dpo.preference_loss(chosen, rejected, ref_c, ref_r, beta)
    out.losses.sum().backward()
    assert torch.all(chosen.grad < 0) and torch.all(rejected.grad > 0)  # descent raises chosen, lowers rejected
    # Section 4: the weight is beta * sigmoid(r_l - r_w), large when the implicit reward ranks the pair wrongly.
    weight = beta * torch.sigmoid(out.rejected_rewards - out.chosen_rewards)
    assert torch.allclose(-chosen.grad, weight, atol=1e-6)
    assert torch.allclose(rejected.grad, weight, atol=1e-6)


def test_ipo_is_minimal_at_its_target_margin_and_hinge_stops_at_margin_one():
    beta = 0.2
    target = 1 / (2 * beta)
    h = torch.tensor([target], requires_grad=True)
    zero = torch.zeros(1)
    ipo = dpo.preference_loss(h, zero, zero, zero, beta, "ipo")
    ipo.losses.sum().backward()
    assert ipo.losses.item() == pytest.approx(0.0) and h.grad.abs().item() < 1e-6
    beyond = torch.tensor([target + 3.0], requires_grad=True)  # IPO pulls an over-confident margin back
    dpo.preference_loss(beyond, zero, zero, zero, beta, "ipo").losses.sum().backward()
    assert beyond.grad.item() > 0
    far = torch.tensor([1 / beta + 1.0], requires_grad=True)  # beta*h > 1: the hinge is satisfied
    hinge = dpo.preference_loss(far, zero, zero, zero, beta, "hinge")
    hinge.losses.sum().backward()
    assert hinge.losses.item() == 0.0 and far.grad.item() == 0.0
    sig = torch.tensor([1 / beta + 1.0], requires_grad=True)  # the sigmoid loss never stops pushing
    dpo.preference_loss(sig, zero, zero, zero, beta).losses.sum().backward()
    assert sig.grad.item() < 0


@pytest.mark.parametrize("beta", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_beta_is_refused(beta):
    x = torch.zeros(1)
    with pytest.raises(ValueError, match="beta"):
        dpo.preference_loss(x, x, x, x, beta)
    with pytest.raises(ValueError, match="β"):
        dpo.DPOConfig(beta=beta, n_train=10)


def test_config_validation_says_how_to_fix():
    with pytest.raises(ValueError, match="no training pairs"):
        dpo.DPOConfig(n_train=0)
    with pytest.raises(ValueError, match="variant"):
        dpo.DPOConfig(n_train=5, loss_variant="kto")
    with pytest.raises(ValueError, match="learning rate"):
        dpo.DPOConfig(n_train=5, learning_rate=float("nan"))


PAIRS = [preferences.PreferencePair(({"role": "user", "content": f"Question {i}?"},), f"Plain answer {i}.",
                                    f"Dense technical answer number {i} with jargon.") for i in range(6)]


def test_reference_is_the_base_model_with_the_adapter_really_disabled(tiny):
    model, _, _ = training.trainable_model(tiny, "lora", training.LoraSettings(r=4))
    encoded, _ = dpo.encode_pairs(tiny, PAIRS[:2], 64)
    batch = dpo.pair_batch(encoded, tiny.tokenizer.eos_token_id, "cpu")
    policy, ref, _ = dpo.policy_and_reference_logps(model, batch, with_grad=False)
    assert torch.allclose(policy, ref, atol=1e-5)  # LoRA B = 0: policy == reference, so the loss starts at log 2
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    policy, ref, _ = dpo.policy_and_reference_logps(model, batch, with_grad=False)
    base, _ = training.sequence_logprobs(tiny.model, **batch)  # the shared model, no adapter anywhere
    assert torch.allclose(ref, base, atol=1e-5)
    assert not torch.allclose(policy, ref, atol=1e-3)
    assert not any(p.requires_grad for p in tiny.model.parameters())


def test_top_layer_lora_shares_the_frozen_blocks_between_policy_and_reference(tiny):
    """LoRA on the top block only: policy and reference read the bottom block's stored states, with the same
    log-probs and gradients as the plain forward, and each sequence runs through the bottom block once."""
    from labs.training.prefix import FrozenPrefix

    n = len(training.decoder_layers(tiny.model))
    model, _, _ = training.trainable_model(tiny, "lora", training.LoraSettings(r=4, layers=(n - 1,)))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    encoded, _ = dpo.encode_pairs(tiny, PAIRS[:2], 64)
    batch = dpo.pair_batch(encoded, tiny.tokenizer.eos_token_id, "cpu")
    frozen = FrozenPrefix(model, ("dpo-test", id(model)))
    results = []
    for use in (None, frozen, frozen):
        model.zero_grad()
        policy, ref, _ = dpo.policy_and_reference_logps(model, batch, frozen=use)
        dpo.preference_loss(policy[:2], policy[2:], ref[:2], ref[2:], beta=0.5).losses.mean().backward()
        results.append((policy.detach(), ref, [p.grad.clone() for p in model.parameters() if p.requires_grad]))
    for policy, ref, grads in results[1:]:
        assert torch.allclose(policy, results[0][0], atol=1e-5) and torch.allclose(ref, results[0][1], atol=1e-5)
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads, results[0][2]))
    assert frozen.captured == 4 and frozen.replayed == 4  # 4 sequences: computed once, replayed on the next step


def test_a_few_steps_widen_the_margin_on_one_pair(tiny):
    torch.manual_seed(0)
    model, _, _ = training.trainable_model(tiny, "lora", training.LoraSettings(r=4))
    encoded, _ = dpo.encode_pairs(tiny, PAIRS[:2], 64)
    batch = dpo.pair_batch(encoded, tiny.tokenizer.eos_token_id, "cpu")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2)
    losses = []
    for _ in range(8):
        policy, ref, _ = dpo.policy_and_reference_logps(model, batch)
        out = dpo.preference_loss(policy[:2], policy[2:], ref[:2], ref[2:], beta=0.5)
        opt.zero_grad()
        out.losses.mean().backward()
        opt.step()
        losses.append(out.losses.mean().item())
    assert losses[0] == pytest.approx(math.log(2), abs=1e-4)
    assert losses[-1] < losses[0] - 0.1
    assert out.margins.mean().item() > 0


def test_pair_longer_than_the_limit_is_skipped_with_a_note(tiny):
    long_prompt = preferences.PreferencePair(({"role": "user", "content": "word " * 200},), "a", "b")
    encoded, notes = dpo.encode_pairs(tiny, [PAIRS[0], long_prompt], 64)
    assert len(encoded) == 1 and encoded[0].index == 0
    assert "skipped" in notes[0] and "pair 2" in notes[0]


def test_background_run_logs_every_curve_and_saves_an_adapter(tiny):
    cfg = dpo.DPOConfig(model_key=tiny.key, data_id="test-tiny", n_train=4, n_heldout=2, steps=3, pairs_per_step=2,
                        eval_pairs=2, sample_prompts=1, max_new_tokens=4, learning_rate=1e-2, max_len=64, seed=1)
    run_id = jobs.submit(cfg, functools.partial(dpo.train, lm=tiny, train_pairs=PAIRS[:4], heldout_pairs=PAIRS[4:],
                                                general_prompts=("Hi",)))
    run = jobs.wait(run_id, timeout=120)
    assert run.status == jobs.DONE, run.reason
    assert [m["step"] for m in run.metrics] == [1, 2, 3]
    first = run.metrics[0]
    for key in ("loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
                "logps/chosen", "logps/rejected", "tokens_per_s"):
        assert key in first
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-4)  # step 1 sees policy == reference
    result = dpo.load_result(run)
    assert result["heldout"]["pairs"] == 2 and len(result["samples"]) == 1 and len(result["general"]) == 1
    assert {"reference", "tuned", "prompt"} <= set(result["samples"][0])
    listed = [a for a in adapters.list_adapters() if a.meta.get("run_id") == run_id]
    assert listed and listed[0].page == "dpo"
    assert jobs.submit(cfg, functools.partial(dpo.train, lm=tiny, train_pairs=PAIRS[:4],
                                              heldout_pairs=PAIRS[4:])) == run_id  # same config + seed = replay
    assert jobs.get(run_id).replayed


def test_claim_verdict_compares_windows_of_steps_and_reports_the_chosen_reward():
    from labs.runs import lessons

    steps = [{"rewards/margins": 0.1 * i, "rewards/accuracies": min(1.0, 0.4 + 0.05 * i),
              "rewards/chosen": -0.02 * i} for i in range(12)]
    v = dpo.claim_verdict(steps, heldout={"mean_margin": 1.5, "implicit_reward_accuracy": 0.9})
    assert v.verdict == lessons.HOLDS and "the chosen reward fell" in v.figure
    assert v.figures["heldout_margin"] == 1.5 and v.figures["window_steps"] == 5
    flat = [dict(m, **{"rewards/margins": 0.5}) for m in steps]
    assert dpo.claim_verdict(flat).verdict == lessons.FAILS
    assert dpo.claim_verdict(steps[:9]).verdict == lessons.NOT_MEASURED
