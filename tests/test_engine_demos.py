"""Each demo's key numbers against theory or an independent computation, and its PNGs."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
import torch

import engine
from engine.plot import DPI

torch.set_num_threads(2)


def png_size(data: bytes) -> tuple[int, int]:
    import matplotlib.image as mpimg

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) <= 1_000_000
    img = mpimg.imread(io.BytesIO(data), format="png")
    assert img[..., :3].mean() > 0.5, "figure background should be light (white), not transparent"
    return img.shape[1], img.shape[0]


def run(req):
    r = engine.run(req)
    assert isinstance(r, engine.DemoResult)
    assert r.images and r.text and r.device in ("cpu", "cuda", "mps")
    body, refs = r.text.split("\n\nIllustrates (knowledge base):\n")
    assert body and all(line.startswith("• ") and line.endswith("”") for line in refs.splitlines())
    for im in r.images:
        w, h = png_size(im)
        assert 500 <= w <= 1200 and 150 <= h <= 900
    return r


def test_receptive_field_closed_form_and_backprop_agree():
    r = run("show receptive field after two stride-2 convs")
    assert r.numbers["size"] == 7 and r.numbers["size_empirical"] == 7
    assert png_size(r.images[0]) == (11 * DPI, int(3.8 * DPI))
    r = run("receptive field with dilation 1, 2 and 4")
    assert r.numbers["size"] == r.numbers["size_empirical"] == 15
    r = run({"demo": "receptive_field", "params": {"layers": "7:2:3,3:2:1,3:1:1,3:2:1"}})
    # independent recursion, written the other way round: field of layer l in input pixels
    size, jump = 1, 1
    for k, s in ((7, 2), (3, 2), (3, 1), (3, 2)):
        size, jump = size + (k - 1) * jump, jump * s
    assert r.numbers["size"] == r.numbers["size_empirical"] == size


def test_conv_output_formula_matches_torch_and_explains_fractions():
    r = run("output size for W=227 F=11 S=4 P=0")
    assert r.numbers["output_size"] == 55 == r.numbers["torch_output_size"]
    r = run({"demo": "conv_output", "params": {"size": 10, "layers": "3:2"}})
    assert r.numbers["exact"] == ["9/2"] and r.numbers["integer"] is False
    assert r.numbers["output_size"] == 4 == r.numbers["torch_output_size"]
    assert "not an integer" in r.text
    with pytest.raises(engine.BadParameter):
        engine.run({"demo": "conv_output", "params": {"size": 2, "layers": "7:1"}})


@pytest.mark.parametrize(
    ("req", "params"),
    [
        ("how many parameters does a 5x5 filter on an RGB image have", 76),
        ("params of 8 input channels, 16 output channels, 3x3 kernel", 1168),
        ("conv2d 3->64 kernel 7", 64 * (3 * 49 + 1)),
        ("parameters of a linear layer 784 -> 10", 7850),
    ],
)
def test_param_count(req, params):
    r = run(req)
    assert r.numbers["params"] == params == r.numbers["torch_params"]


def test_param_count_multiplications_mnist_third_layer():
    r = engine.run(
        {"demo": "param_count", "params": {"in_channels": 8, "out_channels": 16, "kernel": 3, "grid": 7}}
    )
    assert r.numbers["multiplications"] == 7 * 7 * (1168 - 16)


def test_conv_apply_matches_hand_sum():
    r = run("apply a top edge kernel to a digit")
    assert r.numbers["kernel"] == [[-1, -1, -1], [0, 0, 0], [1, 1, 1]]
    assert r.numbers["center_pixel"] == pytest.approx(r.numbers["center_pixel_by_hand"], abs=1e-5)
    assert r.numbers["max_abs_diff_vs_numpy"] < 1e-5 and r.numbers["response_to_zeros"] == 0
    assert r.numbers["output_shape"] == [22, 22]
    r = run("blur the digit 0")
    assert abs(r.numbers["out_mean"]) <= 1  # a normalised blur keeps intensities in [0, 1]


def _png(width: int, height: int, box: tuple[int, int, int, int]) -> bytes:
    from PIL import Image

    picture = Image.new("L", (width, height), 255)
    picture.paste(0, box)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def test_conv_apply_on_an_uploaded_image():
    """A black box on white: dark = 1, so a top-edge kernel answers +3 on one edge and -3 on the other."""
    data = _png(30, 20, (5, 5, 25, 15))
    req = engine.resolve({"demo": "conv_apply", "params": {"image": data, "kernel": "top_edge"}})
    r = run(req)
    assert r.numbers["input"] == "upload" and r.numbers["digit"] is None
    assert r.numbers["input_shape"] == [20, 30] and r.numbers["output_shape"] == [18, 28]
    assert r.numbers["out_max"] == pytest.approx(3.0) and r.numbers["out_min"] == pytest.approx(-3.0)
    assert r.params == {
        "kernel": "top_edge",
        "image": "20 x 30 (H x W) grayscale image",
    }  # digit/sample unused
    assert "your image (20 x 30 pixels, H x W" in r.text  # sizes as torch orders them, rows first
    # base64 (JSON requests) gives the same picture; big pictures shrink to at most 64 a side
    import base64

    same = engine.resolve({"demo": "conv_apply", "params": {"image": base64.b64encode(data).decode()}})
    assert same.params["image"] == req.params["image"]
    big = engine.resolve({"demo": "conv_apply", "params": {"image": _png(640, 320, (100, 100, 500, 200))}})
    assert (len(big.params["image"][0]), len(big.params["image"])) == (64, 32)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (b"not a picture", "not an image I can read"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image I can read"),
        (b"x" * (8 * 1024 * 1024 + 1), "the limit is 8 MB"),
        ("%%% not base64", "expected image bytes or base64"),
        ([[0.5, 2.0, 0.1], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], "values must lie in"),
        (7, "expected an image file"),
    ],
)
def test_bad_uploads_are_refused(image, message):
    with pytest.raises(engine.BadParameter, match=message):
        engine.resolve({"demo": "conv_apply", "params": {"image": image}})


def test_transparent_and_rotated_pictures_are_read_as_seen():
    from PIL import Image

    clear = Image.new("RGBA", (10, 6), (0, 0, 0, 0))  # fully transparent: background, so white
    clear.paste((0, 0, 0, 255), (0, 0, 3, 6))  # an opaque black stripe on the left
    out = io.BytesIO()
    clear.save(out, format="PNG")
    matrix = engine.resolve({"demo": "conv_apply", "params": {"image": out.getvalue()}}).params["image"]
    assert matrix[0][0] == 1.0 and matrix[0][9] == 0.0
    tall = Image.new("L", (12, 4), 255)  # stored 12 wide; EXIF orientation 6 shows it rotated, 4 wide
    exif = tall.getexif()
    exif[0x0112] = 6
    out = io.BytesIO()
    tall.save(out, format="JPEG", exif=exif)
    matrix = engine.resolve({"demo": "conv_apply", "params": {"image": out.getvalue()}}).params["image"]
    assert (len(matrix[0]), len(matrix)) == (4, 12)


def test_damaged_files_are_refused_never_crash():
    """Every one-byte corruption of a PNG and a JPEG either still reads or is a BadParameter."""
    from PIL import Image

    originals = []
    for fmt in ("PNG", "JPEG"):
        out = io.BytesIO()
        Image.new("RGB", (40, 30), "white").save(out, format=fmt, exif=Image.Exif())
        originals.append(out.getvalue())
    for data in originals:
        for pos in range(0, len(data), max(1, len(data) // 150)):
            damaged = data[:pos] + bytes([data[pos] ^ 0x5A]) + data[pos + 1 :]
            with contextlib.suppress(engine.BadParameter):  # anything else fails the test
                engine.resolve({"demo": "conv_apply", "params": {"image": damaged}})


def test_sixteen_bit_grey_is_scaled_not_clipped():
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)).save(out, format="PNG")  # mid grey
    matrix = engine.resolve({"demo": "conv_apply", "params": {"image": out.getvalue()}}).params["image"]
    assert matrix[0][0] == pytest.approx(0.5, abs=0.01)


def test_wrong_value_in_an_error_message_is_cut_short():
    with pytest.raises(engine.BadParameter) as info:
        engine.resolve({"demo": "memory_estimate", "params": {"image": b"\x89PNG" * 10_000}})
    assert len(str(info.value)) < 300


def test_an_image_too_small_to_convolve_is_refused():
    with pytest.raises(engine.BadParameter, match="too small"):
        engine.resolve({"demo": "conv_apply", "params": {"image": _png(2, 9, (0, 0, 1, 1))}})


def test_softmax_bear_example():
    r = run("calculate the exp and softmax columns of bear_softmax")
    assert [round(e, 2) for e in r.numbers["exp"]] == [1.02, 0.08, 3.49]
    assert [round(p, 2) for p in r.numbers["probs"]] == [0.22, 0.02, 0.76]
    assert r.numbers["loss"] == pytest.approx(-math.log(r.numbers["probs"][0]))
    assert r.numbers["agree"]
    with pytest.raises(engine.BadParameter, match="target"):
        engine.run("softmax of 1, 2 with target 5")


def test_init_loss_is_log_n():
    r = run("expected loss at init for 10 classes")
    assert r.numbers["loss"] == pytest.approx(math.log(10))
    assert r.numbers["empirical_loss"] == pytest.approx(math.log(10), rel=0.01)


def test_activations_gradients():
    r = run("activations")
    assert r.numbers["max_grad_sigmoid"] == pytest.approx(0.25)
    assert r.numbers["max_grad_tanh"] == pytest.approx(1.0)
    assert r.numbers["max_abs_err_autograd_vs_formula"] < 1e-10
    assert r.numbers["range_relu"][0] == 0


@pytest.mark.parametrize("kind", ["one_cycle", "step", "exponential", "inv_t", "cosine"])
def test_lr_schedules_match_closed_form(kind):
    r = run({"demo": "lr_schedule", "params": {"kind": kind, "steps": 120}})
    assert r.numbers["kind"] == kind
    assert r.numbers["max_rel_diff_vs_formula"] < 1e-9
    if kind == "one_cycle":
        assert r.numbers["max_lr"] == pytest.approx(0.01)
        assert r.numbers["initial_lr"] == pytest.approx(0.01 / 25)
        assert r.numbers["momentum_at_peak"] == pytest.approx(0.85)
        assert r.numbers["peak_step"] == 29


def test_lr_finder_suggestion_trains():
    r = run({"demo": "lr_finder", "params": {"steps": 60}})
    n = r.numbers
    assert n["suggested_lr"] == pytest.approx(n["lr_min_loss"] / 10)
    assert 1e-4 < n["suggested_lr"] < 1
    assert n["check_60_steps"]["suggested"]["val_accuracy"] > 0.8


def test_optimizers_match_handwritten_rules():
    r = run({"demo": "optimizers", "params": {"steps": 60}})
    assert set(r.numbers["final_loss"]) == {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"}
    assert max(r.numbers["max_diff_vs_handwritten"].values()) < 1e-9
    assert all(v < 8.25 for v in r.numbers["final_loss"].values())  # all moved downhill from f(start)=8.1


def test_activation_stats_batchnorm():
    r = run({"demo": "activation_stats", "params": {"steps": 40}})
    assert set(r.numbers["near_zero_pct"]) == {"plain", "batchnorm"}
    assert all(0 <= v <= 100 for v in r.numbers["near_zero_pct"].values())
    assert (
        r.numbers["batchnorm_check"]["mean"] < 1e-4 and r.numbers["batchnorm_check"]["std_dev_from_1"] < 1e-3
    )
    assert len(r.images) == 2


def test_weight_init_matches_mean_field_theory():
    r = run({"demo": "weight_init", "params": {"depth": 8, "width": 256}})
    last, pred = r.numbers["last_layer_std"], r.numbers["predicted_last_layer_std"]
    assert last["small"] < 1e-4 < last["xavier"]
    for k in ("xavier", "he"):
        assert last[k] == pytest.approx(pred[k], rel=0.15)
    r = run(
        {
            "demo": "weight_init",
            "params": {"activation": "relu", "depth": 8, "width": 256, "schemes": "xavier,he"},
        }
    )
    assert r.numbers["last_layer_std"]["xavier"] < 0.2 * r.numbers["last_layer_std"]["he"]


def test_conv_as_matmul_equals_conv2d():
    r = run("conv as matmul for a 5x5 input and 3x3 kernel")
    assert r.numbers["matrix_shape"] == [9, 25]
    assert r.numbers["equal"] and r.numbers["distinct_weights"] == 9 and r.numbers["zeros"] == 9 * 25 - 81
    r = run({"demo": "conv_as_matmul", "params": {"size": 6, "stride": 2, "padding": 1}})
    assert r.numbers["matrix_shape"] == [9, 36] and r.numbers["equal"]


def test_knn_one_nn_memorises():
    r = run("1-NN vs k-NN decision boundaries")
    assert r.numbers["train_accuracy_1nn"] == 1.0
    assert r.numbers["train_accuracy_knn"] < 1.0
    assert r.numbers["agreement_with_sklearn"] > 0.97


def test_gradient_check_and_kink():
    r = run("gradient check a small network")
    assert r.numbers["relative_error"] < 1e-6
    assert r.numbers["kink_analytic"] == 0 and r.numbers["kink_numeric"] == pytest.approx(0.45)
    assert r.numbers["crosses_kink"]
    r32 = engine.run({"demo": "gradient_check", "params": {"dtype": "float32"}})
    assert r32.numbers["relative_error"] > r.numbers["relative_error"]


def test_deterministic_for_a_seed():
    a = engine.run({"demo": "knn", "params": {"seed": 3}})
    b = engine.run({"demo": "knn", "params": {"seed": 3}})
    assert a.numbers == b.numbers
    assert np.array_equal(np.frombuffer(a.images[0], np.uint8), np.frombuffer(b.images[0], np.uint8))


def test_result_round_trips_as_plain_data():
    import json

    r = engine.run("conv2d 3->64 kernel 7")
    d = json.loads(json.dumps(r.to_dict(images="base64")))
    assert engine.DemoResult.from_dict(d) == r


def test_dead_relu_high_lr_kills_units():
    r = run("dead relus at a high learning rate")
    d = r.numbers["dead_fraction"]
    assert d == r.numbers["dead_fraction_numpy"] and r.numbers["agree"]  # forward hook vs numpy recompute
    assert d["high"] > 0.5 > 0.1 > d["normal"]
    assert r.numbers["train_accuracy"]["normal"] > 0.8 > r.numbers["train_accuracy"]["high"]
    assert r.numbers["grad_into_dead_units"]["high"] == 0.0  # dead units get no gradient: they stay dead
    with pytest.raises(engine.BadParameter, match="larger"):
        engine.run({"demo": "dead_relu", "params": {"lr_high": 0.01, "lr_normal": 0.1}})


def test_inverted_dropout_keeps_expectation():
    r = run("dropout with keep probability 0.8")
    n = r.numbers
    assert n["scale"] == pytest.approx(1 / 0.8) and n["torch_scale"] == pytest.approx(1 / 0.8)
    assert n["relative_gap_inverted"] < 0.01 and n["relative_gap_torch"] < 0.01
    assert n["relative_gap_without_scaling"] == pytest.approx(0.2, abs=0.01)  # p·x instead of x
    assert n["kept_fraction"] == pytest.approx(0.8, abs=0.01)


@pytest.mark.parametrize(
    ("a", "b"),
    [([1010, 28, 28], [28, 28]), ([8, 1, 6, 1], [7, 1, 5]), ([3, 1], [1, 4]), ([2, 3], [3, 2]), ([5], [1])],
)
def test_broadcasting_matches_torch(a, b):
    from engine.demos.broadcasting import broadcast_shape

    r = engine.run({"demo": "broadcasting", "params": {"shape_a": a, "shape_b": b}})
    try:
        expected = list(np.broadcast_shapes(tuple(a), tuple(b)))  # numpy: a third, independent rule
    except ValueError:
        expected = None
    assert (
        r.numbers["result_shape"] == expected == r.numbers["torch_result_shape"] == broadcast_shape(a, b)[0]
    )
    assert r.numbers["compatible"] is (expected is not None)
    if expected is not None:
        assert r.numbers["sum_shape"] == expected and r.numbers["max_diff_vs_explicit_copy"] == 0
        assert 0 in r.numbers["expanded_strides_b"] or a == b  # stretched dims: stride 0, no copy
    else:
        assert "not** broadcast" in r.text


def test_broadcasting_figure():
    r = run("what is broadcasting")
    assert r.numbers["result_shape"] == [1010, 28, 28]
    assert r.numbers["expanded_strides_b"] == [0, 28, 1]


def test_memory_estimate_against_torch_and_hand_count():
    r = run("how much memory does a small conv net need")
    n = r.numbers
    assert n["params"] == n["torch_params"] and n["activations_per_image"] == n["hook_activations_per_image"]
    # hand count of the default net (224x224 RGB, 3 blocks of two 3x3 convs from 64 channels, 10 classes)
    act = (
        3 * 224**2
        + sum(2 * c * s * s + c * (s // 2) ** 2 for c, s in ((64, 224), (128, 112), (256, 56)))
        + 10
    )
    assert n["activations_per_image"] == act
    total = (2 * act * 64 + 2 * n["params"]) * 4
    assert n["total_gb"] == pytest.approx(total / 1024**3)
    assert n["max_batch_in_budget"] == (8 * 1024**3 - 2 * n["params"] * 4) // (2 * act * 4)
    r = engine.run({"demo": "memory_estimate", "params": {"dtype": "float64", "optimizer": "adam"}})
    assert r.numbers["total_gb"] == pytest.approx((2 * act * 64 + 4 * n["params"]) * 8 / 1024**3)
    with pytest.raises(engine.BadParameter, match="divisible"):
        engine.run({"demo": "memory_estimate", "params": {"image": 100, "blocks": 3}})


def test_kb_citations_quote_the_sources():
    """Every knowledge-base entry a demo names is an entry of the bundled document with that title, as the
    bot looks it up for "Show me" (document title, then the question compared as knowledge compares it)."""
    from knowledge.loader import SOURCES_DIR, collect_paths, load_document
    from knowledge.models import question_key

    documents = [load_document(p) for p in collect_paths([SOURCES_DIR])]
    questions = {}
    for doc in documents:
        questions.setdefault(doc.meta.title, set()).update(question_key(e.question) for e in doc.entries)
    assert len(questions) == len(documents), "titles name one document each"
    for spec in engine.catalogue():
        assert spec.kb, spec.name
        for ref in spec.kb:
            assert question_key(ref.question) in questions[ref.title], (spec.name, ref.question)
