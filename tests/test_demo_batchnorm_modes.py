"""batchnorm_modes: one BatchNorm layer in train and in eval mode on the same batch, checked against the
formulas; its requests, and its place in the catalogue (found from its module alone)."""

from __future__ import annotations

import pytest

import engine
from engine.catalogue import BY_NAME, shared_param


@pytest.mark.parametrize(
    ("text", "params"),
    [
        ("batch norm in train vs eval mode", {}),
        ("batchnorm running mean after 50 batches", {"batches": 50}),
        ("why does batch norm behave differently at inference", {}),
        ("batchnorm train vs eval with momentum 0.5 and batch size 8", {"momentum": 0.5, "batch_size": 8}),
        ("batch norm eval mode on data ~ N(3, 4)", {"mean": 3.0, "std": 2.0}),  # N(mean, variance)
        ("batch norm eval mode on data ~ N(-1, 0.5²)", {"mean": -1.0, "std": 0.5}),  # a std, squared
        # the layer's own "running mean of 5 batches" is no description of the data
        ("batch norm eval mode, running mean of 5 batches, data mean 3 std 0.5", {"batches": 5, "mean": 3.0}),
        (
            "batchnorm_modes momentum=0.5 batches=20 features=2",
            {"momentum": 0.5, "batches": 20, "features": 2},
        ),
    ],
)
def test_requests_read_their_parameters(text, params):
    req = engine.resolve(text)
    assert req.demo == "batchnorm_modes"
    assert {k: req.params[k] for k in params} == params


def test_batch_norm_alone_still_means_activation_stats():
    for text in ("batchnorm", "activation stats with and without batchnorm", "show the color_dim plot"):
        assert engine.resolve(text).demo == "activation_stats", text


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        ("batch norm eval mode on N(0, -4)", "variance of at least 0"),
        ("batch norm eval mode on N(0, inf)", "variance of at least 0"),
        ({"demo": "batchnorm_modes", "params": {"batch_size": 1}}, "between 2 and 512"),
        ({"demo": "batchnorm_modes", "params": {"momentum": 1.5}}, "between 0 and 1"),
        ("batchnorm train vs eval momentum 0.1 and momentum 0.9", "give momentum once"),
    ],
)
def test_bad_values_are_refused_with_their_range(request_, fragment):
    with pytest.raises(engine.BadParameter) as info:
        engine.resolve(request_)
    assert fragment in str(info.value)


def test_train_mode_normalises_with_the_batch_eval_mode_with_the_running_statistics():
    r = engine.run("batchnorm_modes batches=10 momentum=0.1")
    n = r.numbers
    assert n["agree"] and n["max_diff_vs_formula"] < 1e-9  # torch = the formulas (numpy, float64)
    assert abs(n["train_output"]["mean"]) < 1e-9 and n["train_output"]["std"] == pytest.approx(1, abs=1e-4)
    assert n["running_mean_share"] == pytest.approx(1 - 0.9**10)
    # the running mean lags the data's (mean 5): eval mode shifts the same batch up, train mode does not
    assert all(0 < rm < 5 for rm in n["running_mean"]) and n["eval_output"]["mean"] > 0.5
    assert n["max_train_eval_gap"] > 0.5
    # an example's train-mode output depends on its batch; its eval-mode output does not
    assert n["train_mode_batch_effect"] > 0.01 and n["eval_mode_batch_effect"] == 0
    assert len(r.images) == 1 and r.images[0][:4] == b"\x89PNG"
    assert "Illustrates (knowledge base)" in r.text and "batch normalization layer contain" in r.text


def test_running_statistics_follow_the_momentum():
    """Momentum 0 never moves them (eval mode sees the raw input); momentum 1 keeps the last batch's."""
    frozen = engine.run("batchnorm_modes momentum=0 batches=5").numbers
    assert frozen["running_mean"] == [0.0] * 3 and frozen["running_var"] == [1.0] * 3
    assert frozen["running_mean_share"] == 0
    assert frozen["eval_output"]["mean"] == pytest.approx(5, abs=0.5)  # ≈ x / √(1 + eps): the data's mean
    many = engine.run("batchnorm_modes momentum=0.5 batches=200 batch_size=256").numbers
    assert many["running_mean"] == pytest.approx([5] * 3, abs=0.3)
    assert many["running_var"] == pytest.approx([4] * 3, rel=0.25)
    assert abs(many["eval_output"]["mean"]) < 0.3 and many["eval_output"]["std"] == pytest.approx(1, abs=0.2)


def test_deterministic_for_a_seed():
    a, b = engine.run("batchnorm_modes seed=3"), engine.run("batchnorm_modes seed=3")
    assert a.numbers == b.numbers and a.images == b.images
    assert engine.run("batchnorm_modes seed=4").numbers != a.numbers


def test_one_module_is_the_whole_demo():
    """Its spec is in the catalogue, its parameters feed the shared options, nothing else names it."""
    from pathlib import Path

    spec = BY_NAME["batchnorm_modes"]
    assert engine.catalogue()[-1] is spec and spec.to_dict()["kb"]
    assert "batchnorm_modes" in shared_param("seed").demos  # the bot's seed option serves it too
    engine_dir = Path(engine.__file__).parent
    naming = [
        p.relative_to(engine_dir).as_posix()
        for p in engine_dir.rglob("*.py")
        if "batchnorm_modes" in p.read_text(encoding="utf-8")
    ]
    assert naming == ["demos/batchnorm_modes.py"]
