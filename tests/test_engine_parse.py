"""Parser: many phrasings per demo, echo of parsed params, bounds and unknown requests (no torch needed)."""

from __future__ import annotations

import pytest

import engine
from engine.errors import BadParameter, UnknownDemo
from engine.parse import normalize_demo_request


def layers(*specs):
    return [dict(zip(("kernel", "stride", "padding", "dilation"), s, strict=True)) for s in specs]


@pytest.mark.parametrize(
    ("text", "demo", "expected"),
    [
        (
            "show receptive field after two stride-2 convs",
            "receptive_field",
            {"layers": layers((3, 2, 0, 1), (3, 2, 0, 1))},
        ),
        ("receptive field of three 3x3 convs", "receptive_field", {"layers": layers(*[(3, 1, 0, 1)] * 3)}),
        (
            "receptive field with dilation 1, 2 and 4",
            "receptive_field",
            {"layers": layers((3, 1, 0, 1), (3, 1, 0, 2), (3, 1, 0, 4))},
        ),
        (
            "receptive field of a 5x5 conv then two 3x3 stride 2 convs",
            "receptive_field",
            {"layers": layers((5, 1, 0, 1), (3, 2, 0, 1), (3, 2, 0, 1))},
        ),
        (
            "RF of kernels 3, 5 and 7",
            "receptive_field",
            {"layers": layers((3, 1, 0, 1), (5, 1, 0, 1), (7, 1, 0, 1))},
        ),
        (
            "receptive_field layers=3:2,3:2,3:1",
            "receptive_field",
            {"layers": layers((3, 2, 0, 1), (3, 2, 0, 1), (3, 1, 0, 1))},
        ),
        ("output size for W=227 F=11 S=4 P=0", "conv_output", {"size": 227, "layers": layers((11, 4, 0, 1))}),
        (
            "conv output of a 32x32 input with a 5x5 kernel, padding 2",
            "conv_output",
            {"size": 32, "layers": layers((5, 1, 2, 1))},
        ),
        (
            "shape trace of 28x28 through two stride 2 3x3 convs with padding 1",
            "conv_output",
            {"size": 28, "layers": layers((3, 2, 1, 1), (3, 2, 1, 1))},
        ),
        (
            "output size with input 64 and a 3x3 same conv",
            "conv_output",
            {"size": 64, "layers": layers((3, 1, 1, 1))},
        ),
        (
            "how many parameters does a 5x5 filter on an RGB image have",
            "param_count",
            {"in_channels": 3, "out_channels": 1, "kernel": 5},
        ),
        (
            "params of 8 input channels, 16 output channels, 3x3 kernel",
            "param_count",
            {"in_channels": 8, "out_channels": 16, "kernel": 3},
        ),
        ("conv2d 3->64 kernel 7", "param_count", {"in_channels": 3, "out_channels": 64, "kernel": 7}),
        (
            "parameters of a linear layer 784 -> 10 without bias",
            "param_count",
            {"layer": "linear", "in_channels": 784, "out_channels": 10, "bias": False},
        ),
        ("param_count --in_channels 64 --kernel 3", "param_count", {"in_channels": 64, "kernel": 3}),
        ("apply a top edge kernel to a digit", "conv_apply", {"kernel": "top_edge"}),
        ("sharpen digit 7", "conv_apply", {"kernel": "sharpen", "digit": 7}),
        ("blur the digit 0", "conv_apply", {"kernel": "blur", "digit": 0}),
        (
            "apply kernel [[0,1,0],[1,-4,1],[0,1,0]] to digit 5",
            "conv_apply",
            {"kernel": "custom", "matrix": [[0, 1, 0], [1, -4, 1], [0, 1, 0]], "digit": 5},
        ),
        (
            "calculate the exp and softmax columns of bear_softmax",
            "softmax",
            {"activations": [0.02, -2.49, 1.25]},
        ),
        ("softmax of 1, 2, 3 with target 2", "softmax", {"activations": [1.0, 2.0, 3.0], "target": 2}),
        ("cross-entropy for logits 2.0 1.0 0.1", "softmax", {"activations": [2.0, 1.0, 0.1]}),
        ("expected loss at init for 10 classes", "init_loss", {"classes": 10}),
        ("initial softmax loss with 1000 classes", "init_loss", {"classes": 1000}),
        ("-log(1/N) for N=100", "init_loss", {"classes": 100}),
        ("loss at initialization on cifar-100", "init_loss", {"classes": 100}),
        (
            "plot sigmoid, tanh and relu with their gradients",
            "activations",
            {"functions": ["sigmoid", "tanh", "relu"]},
        ),
        ("draw relu from -2 to 2", "activations", {"functions": ["relu"], "x_min": -2.0, "x_max": 2.0}),
        (
            "leaky relu with slope 0.2 vs gelu",
            "activations",
            {"functions": ["leaky_relu", "gelu"], "slope": 0.2},
        ),
        ("show the 1cycle schedule", "lr_schedule", {"kind": "one_cycle"}),
        (
            "one cycle lr schedule with max lr 0.1 over 300 steps",
            "lr_schedule",
            {"kind": "one_cycle", "lr": 0.1, "steps": 300},
        ),
        (
            "step decay every 30 steps with gamma 0.5",
            "lr_schedule",
            {"kind": "step", "step_size": 30, "gamma": 0.5},
        ),
        ("exponential decay over 200 steps", "lr_schedule", {"kind": "exponential", "steps": 200}),
        ("1/t decay with k 0.1", "lr_schedule", {"kind": "inv_t", "k": 0.1}),
        (
            "cosine annealing for 500 steps with lr 0.1",
            "lr_schedule",
            {"kind": "cosine", "steps": 500, "lr": 0.1},
        ),
        ("run the learning rate finder", "lr_finder", {}),
        (
            "lr finder from 1e-6 to 1 over 150 steps",
            "lr_finder",
            {"start_lr": 1e-6, "end_lr": 1.0, "steps": 150},
        ),
        ("compare optimizers on a 2D surface", "optimizers", {}),
        (
            "adam vs sgd with momentum for 200 steps",
            "optimizers",
            {"optimizers": ["adam", "momentum"], "steps": 200},
        ),
        (
            "rmsprop and adagrad on the rosenbrock function",
            "optimizers",
            {"optimizers": ["rmsprop", "adagrad"], "surface": "rosenbrock"},
        ),
        ("activation stats with and without batchnorm", "activation_stats", {"batchnorm": "both"}),
        ("show the color_dim plot without batchnorm", "activation_stats", {"batchnorm": "without"}),
        ("% of activations near zero after 100 steps", "activation_stats", {"steps": 100}),
        ("weight init for a deep tanh network", "weight_init", {"activation": "tanh"}),
        (
            "xavier vs he on a 10-layer relu mlp",
            "weight_init",
            {"activation": "relu", "depth": 10, "schemes": ["xavier", "he"]},
        ),
        ("init 0.01 with twenty layers of tanh", "weight_init", {"schemes": ["small"], "depth": 20}),
        ("show a convolution as a matrix multiplication", "conv_as_matmul", {}),
        ("conv as matmul for a 5x5 input and 3x3 kernel", "conv_as_matmul", {"size": 5, "kernel": 3}),
        ("unrolled weight matrix with stride 2 and padding 1", "conv_as_matmul", {"stride": 2, "padding": 1}),
        ("1-NN vs k-NN decision boundaries", "knn", {}),
        ("knn with k=15 on circles", "knn", {"k": 15, "dataset": "circles"}),
        ("1-nn vs 7-nn nearest neighbour classifier with L1 distance", "knn", {"k": 7, "distance": "l1"}),
        ("gradient check a small network", "gradient_check", {}),
        ("numerical vs analytic gradient with h=1e-4", "gradient_check", {"h": 1e-4}),
        (
            "show the kink near relu's 0 in a gradient check in float32",
            "gradient_check",
            {"dtype": "float32"},
        ),
        ("what does it mean when a ReLU neuron dies", "dead_relu", {}),
        ("dying relu with learning rate 3 vs 0.05", "dead_relu", {"lr_high": 3.0, "lr_normal": 0.05}),
        ("dead relu with 50 hidden units and 300 steps", "dead_relu", {"hidden": 50, "steps": 300}),
        ("what is inverted dropout", "inverted_dropout", {"keep": 0.5}),
        ("dropout with keep probability 0.8", "inverted_dropout", {"keep": 0.8}),
        ("inverted dropout with drop rate 0.3", "inverted_dropout", {"keep": 0.7}),
        ("dropout p=0.9 over 500 trials", "inverted_dropout", {"keep": 0.9, "trials": 500}),
        ("what is broadcasting", "broadcasting", {"shape_a": [1010, 28, 28], "shape_b": [28, 28]}),
        ("broadcast (3, 1) with (1, 4)", "broadcasting", {"shape_a": [3, 1], "shape_b": [1, 4]}),
        (
            "can shapes 8x1x6x1 and 7x1x5 broadcast",
            "broadcasting",
            {"shape_a": [8, 1, 6, 1], "shape_b": [7, 1, 5]},
        ),
        ("broadcast shapes 3,4 and 4", "broadcasting", {"shape_a": [3, 4], "shape_b": [4]}),
        ("broadcasting [2,3] + [3,2]", "broadcasting", {"shape_a": [2, 3], "shape_b": [3, 2]}),
        ("memory estimate for batch 128 of 64x64 images", "memory_estimate", {"batch": 128, "image": 64}),
        (
            "convert the number of values to GB for a convnet in float64",
            "memory_estimate",
            {"dtype": "float64"},
        ),
        (
            "will my convnet fit on a 16 GB GPU with batch size 256 and adam",
            "memory_estimate",
            {"budget_gb": 16.0, "batch": 256, "optimizer": "adam"},
        ),
        (
            "memory of 4 blocks, image 128, fp16",
            "memory_estimate",
            {"blocks": 4, "image": 128, "dtype": "float16"},
        ),
        # lists in key=value pairs separated by spaces alone, as before the hardening
        ("softmax activations=[2 1 0.1]", "softmax", {"activations": [2.0, 1.0, 0.1]}),
        ("activations functions=[relu tanh]", "activations", {"functions": ["relu", "tanh"]}),
        ("broadcasting shape_a=[3 4] shape_b=[4]", "broadcasting", {"shape_a": [3, 4], "shape_b": [4]}),
        ("optimizers optimizers=[sgd adam]", "optimizers", {"optimizers": ["sgd", "adam"]}),
        # a number with thousands separators is one number where one number is read ...
        ("lr schedule over 1,500 steps", "lr_schedule", {"steps": 1500}),
        ("memory estimate batch 1,024", "memory_estimate", {"batch": 1024}),
        ("conv output for a 1,024 image", "conv_output", {"size": 1024}),
        ("conv output for a 64 pixel image with a 3x3 kernel", "conv_output", {"size": 64}),
        ("init loss for 1,000 classes", "init_loss", {"classes": 1000}),
        ("init loss for 10,000 classes", "init_loss", {"classes": 10000}),
        ("init_loss classes=1,000", "init_loss", {"classes": 1000}),
        (
            "parameters of a linear layer 1,024 -> 10",
            "param_count",
            {"in_channels": 1024, "out_channels": 10},
        ),
        # ... and a list stays a list
        (
            "receptive field with kernels 3,3,3",
            "receptive_field",
            {"layers": layers(*[(3, 1, 0, 1)] * 3)},
        ),
        ("softmax of 2,1,0.1", "softmax", {"activations": [2.0, 1.0, 0.1]}),
        ("softmax activations=2,1,0.1", "softmax", {"activations": [2.0, 1.0, 0.1]}),
        (
            "broadcast (3,224,224) with (224,224)",
            "broadcasting",
            {"shape_a": [3, 224, 224], "shape_b": [224, 224]},
        ),
        (
            "broadcast shapes 3,224,224 and 224,224",
            "broadcasting",
            {"shape_a": [3, 224, 224], "shape_b": [224, 224]},
        ),
        ("broadcasting shapes 3x4 and 4", "broadcasting", {"shape_a": [3, 4], "shape_b": [4]}),
        ("broadcasting 64,3 vs 3", "broadcasting", {"shape_a": [64, 3], "shape_b": [3]}),
        # k and m suffixes
        ("memory estimate batch 1k", "memory_estimate", {"batch": 1000}),
        ("lr schedule over 2.5k steps", "lr_schedule", {"steps": 2500}),
        # Discord markup is not part of the request
        ("softmax of **2** 1 0.1", "softmax", {"activations": [2.0, 1.0, 0.1]}),
        ("softmax of **2** **1** 0.1", "softmax", {"activations": [2.0, 1.0, 0.1]}),
        (
            "receptive field after **two** 5x5 convs",
            "receptive_field",
            {"layers": layers((5, 1, 0, 1), (5, 1, 0, 1))},
        ),
        ("*sharpen* digit __7__", "conv_apply", {"kernel": "sharpen", "digit": 7}),
        ("`softmax activations=[2 1 0.1]`", "softmax", {"activations": [2.0, 1.0, 0.1]}),
        ("_sharpen_ the digit `0`", "conv_apply", {"kernel": "sharpen", "digit": 0}),
        ("lr schedule over 10**3 steps", "lr_schedule", {"steps": 1000}),
        # a percentage where the parameter is a rate or a fraction
        ("dropout rate of 20%", "inverted_dropout", {"keep": 0.8}),
        ("dropout with keep probability 80%", "inverted_dropout", {"keep": 0.8}),
        ("one cycle schedule with pct_start 30%", "lr_schedule", {"kind": "one_cycle", "pct_start": 0.3}),
        # numbers that belong to no parameter, in ordinary phrasings, are still left alone
        (
            "show receptive field after two stride-2 convs on a 224x224 image",
            "receptive_field",
            {"layers": layers((3, 2, 0, 1), (3, 2, 0, 1))},
        ),
        ("compare optimizers on a 2D surface with lr 0.05", "optimizers", {"lr": 0.05}),
        ("knn with k=3 on moons in 2d", "knn", {"k": 3, "dataset": "moons"}),
        ("1-nn vs 7-nn", "knn", {"k": 7}),
        # numbers given next to a parameter's name are read, also where a demo's own extractor owns it
        ("sgd with momentum 0.5", "optimizers", {"momentum": 0.5}),
        ("param_count input channels 8, filters 16", "param_count", {"in_channels": 8, "out_channels": 16}),
        ("softmax of 1 2 3 with label of 2", "softmax", {"activations": [1.0, 2.0, 3.0], "target": 2}),
        ("conv output width 64 with a 3x3 kernel", "conv_output", {"size": 64}),
        ("memory estimate with budget 4", "memory_estimate", {"budget_gb": 4.0}),
        ("memory estimate with 3 blocks at 128px", "memory_estimate", {"blocks": 3, "image": 128}),
        ("softmax with 4 logits 1 1 1 1", "softmax", {"activations": [1.0] * 4}),  # 4 counts them
        ("lr schedule over 300 steps to 0.1", "lr_schedule", {"steps": 300}),  # "to 0.1" is no steps
        ("params of a conv with 64 in and 128 out", "param_count", {"in_channels": 64, "out_channels": 128}),
        # review of the hardened parser: "N classes" counts the logits, it is no softmax target
        ("softmax for 3 classes 1 2 3", "softmax", {"activations": [1.0, 2.0, 3.0], "target": 0}),
        (
            "softmax for 10 classes 1 2 3 4 5 6 7 8 9 10",
            "softmax",
            {"activations": [float(i) for i in range(1, 11)], "target": 0},
        ),
        ("softmax over classes 2 1 0", "softmax", {"activations": [2.0, 1.0, 0.0], "target": 0}),
        ("cross entropy with 3 classes: 2.0, 1.0, 0.1", "softmax", {"activations": [2.0, 1.0, 0.1]}),
        ("softmax of logits for 4 classes 0.5 1.5 2.5 3.5", "softmax", {"activations": [0.5, 1.5, 2.5, 3.5]}),
        ("softmax of 1 2 3 for class 2", "softmax", {"activations": [1.0, 2.0, 3.0], "target": 2}),
        # "one" as a pronoun is no number
        ("broadcast a 3x4 tensor and a 1x4 one", "broadcasting", {"shape_a": [3, 4], "shape_b": [1, 4]}),
        # a number before a parameter's name is read when nothing else read it
        ("lr finder with 128 batch size", "lr_finder", {"batch_size": 128}),
        ("activation stats 64 batch size", "activation_stats", {"batch_size": 64}),
        ("leaky relu with 0.2 slope", "activations", {"slope": 0.2}),
        ("knn with 0.5 noise", "knn", {"noise": 0.5}),
        ("dropout with 0.5 keep probability", "inverted_dropout", {"keep": 0.5}),
        ("dropout with 80% keep probability", "inverted_dropout", {"keep": 0.8}),
        ("memory estimate for 32 images of 224x224", "memory_estimate", {"batch": 32, "image": 224}),
        ("param_count input channels 8 filters 16", "param_count", {"in_channels": 8, "out_channels": 16}),
        # "N by M" and "N*M" are sizes and kernels
        (
            "conv output for 32 by 32 input with 5 by 5 kernel",
            "conv_output",
            {"size": 32, "layers": layers((5, 1, 0, 1))},
        ),
        ("how many params does a 5*5 filter on RGB have", "param_count", {"kernel": 5, "in_channels": 3}),
        # numbers read whole
        ("memory estimate batch 1_000", "memory_estimate", {"batch": 1000}),
        ("conv output for a 1,024x1,024 image", "conv_output", {"size": 1024}),
        ("weight init for 10 hidden layers", "weight_init", {"depth": 10, "width": 500}),
        ("weight init 5 layers 64 hidden", "weight_init", {"depth": 5, "width": 64}),
        ("param_count kernel 3,3 with 16 filters", "param_count", {"kernel": 3, "out_channels": 16}),
    ],
)
def test_phrasings(text, demo, expected):
    req = engine.resolve(text)
    assert req.demo == demo
    for key, value in expected.items():
        got = req.params[key]
        if isinstance(value, float):
            assert got == pytest.approx(value)
        else:
            assert got == value, (key, got)


def test_number_words_and_shorthands():
    assert normalize_demo_request("two stride-2 convs") == "2 stride 2 convs"
    assert normalize_demo_request("3 × 3 conv → 64") == "3x3 conv -> 64"
    assert "onecycle" in normalize_demo_request("One-cycle schedule")
    assert normalize_demo_request("2.5k steps, 1M params") == "2500 steps, 1000000 params"
    # a comma group that starts with 0 can only be a thousands separator; others are left to context
    assert normalize_demo_request("1,000 classes and 2,050,000.5") == "1000 classes and 2050000.5"
    assert (
        normalize_demo_request("(3,224,224), kernels 3,3,3, 1,200 steps")
        == "(3,224,224), kernels 3,3,3, 1,200 steps"
    )


def test_markdown_emphasis_is_dropped_and_a_power_is_between_numbers():
    assert normalize_demo_request("softmax of **2** 1 0.1") == "softmax of 2 1 0.1"
    assert normalize_demo_request("**two** `5x5` convs") == "2 5x5 convs"
    assert normalize_demo_request("*italic* __under__ _also_ ~~gone~~") == "italic under also gone"
    assert normalize_demo_request("10**12 and 2**-1") == "1000000000000 and 0.5"
    assert normalize_demo_request("2 ** 3") == "2 3"  # no power with spaces (parse() refuses it as ambiguous)
    assert normalize_demo_request("1.5e+19^2") == "1.5e+19^2"  # the exponent of a number in e-form is no base
    assert (
        normalize_demo_request("2^3^2") == "512"
    )  # one chain, read as mathematics does (parse() refuses chains)
    assert (
        normalize_demo_request("receptive_field shape_a=3 x_min=-2 3*10^8 2*3")
        == "receptive_field shape_a=3 x_min=-2 3e8 2x3"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 1 0.1", [2.0, 1.0, 0.1]),
        ("[2 1 0.1]", [2.0, 1.0, 0.1]),
        ("2, 1,0.1", [2.0, 1.0, 0.1]),
        ("2 and 1 & 0.1", [2.0, 1.0, 0.1]),
        ("2;1 ; 0.1", [2.0, 1.0, 0.1]),
        ("(2,  1 )", [2.0, 1.0]),
    ],
)
def test_list_values_split_on_spaces_commas_and_words(text, expected):
    from engine.catalogue import BY_NAME

    spec = BY_NAME["softmax"].param("activations")
    assert spec.coerce(text, "softmax") == pytest.approx(expected)


def test_structured_cli_lists_split_on_spaces():
    from tutor.demo import _structured

    req = engine.resolve(_structured(["softmax", "--activations", "2 1 0.1"], ()))
    assert req.params["activations"] == pytest.approx([2.0, 1.0, 0.1])
    req = engine.resolve(_structured(["activations", "--functions", "relu tanh"], ()))
    assert req.params["functions"] == ["relu", "tanh"]
    req = engine.resolve(_structured(["broadcasting", "--shape-a", "3 4", "--shape-b", "4"], ()))
    assert (req.params["shape_a"], req.params["shape_b"]) == ([3, 4], [4])
    req = engine.resolve(_structured(["lr_schedule", "--steps", "1,500"], ()))
    assert req.params["steps"] == 1500


def test_every_catalogue_example_resolves_to_its_demo():
    for spec in engine.catalogue():
        for example in spec.examples:
            assert engine.resolve(example).demo == spec.name, example


def test_structured_requests_and_json():
    req = engine.resolve({"demo": "receptive_field", "params": {"layers": "3:2,3:2"}})
    assert len(req.params["layers"]) == 2
    req = engine.resolve('{"demo": "softmax", "params": {"activations": [1, 2], "target": 1}}')
    assert req.params == {"activations": [1.0, 2.0], "target": 1}
    assert engine.resolve(engine.DemoRequest("init_loss", {"classes": "7"})).params["classes"] == 7


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        ({"demo": "init_loss", "params": {"classes": 1}}, "between 2 and 10000"),
        ({"demo": "init_loss", "params": {"classes": "ten"}}, "must be an integer"),
        ({"demo": "receptive_field", "params": {"layers": "3:2," * 13}}, "1 to 12"),
        ({"demo": "receptive_field", "params": {"layers": "99:1"}}, "kernel must be between 1 and 15"),
        ({"demo": "softmax", "params": {"activations": [1]}}, "2 to 20"),
        ({"demo": "softmax", "params": {"activations": [1, "nan"]}}, "must be"),
        ({"demo": "lr_schedule", "params": {"kind": "linear"}}, "must be one of"),
        ({"demo": "lr_schedule", "params": {"steps": 10**9}}, "between 2 and 100000"),
        ({"demo": "knn", "params": {"kk": 3}}, "has no parameter kk"),
        ({"demo": "conv_apply", "params": {"matrix": [[1] * 9] * 9, "kernel": "custom"}}, "at most 7x7"),
        ("init_loss classes=__import__('os')", "must be an integer"),
        ("x" * 600, "too long"),
        ({"demo": "broadcasting", "params": {"shape_a": [1] * 7}}, "1 to 6"),
        ({"demo": "broadcasting", "params": {"shape_b": "3,0"}}, "between 1 and 100000"),
        ({"demo": "inverted_dropout", "params": {"keep": 0}}, "between 0.05 and 1"),
        ({"demo": "memory_estimate", "params": {"dtype": "int8"}}, "must be one of"),
        ({"demo": "dead_relu", "params": {"steps": 10**6}}, "between 10 and 1000"),
    ],
)
def test_bounds_give_clear_messages(request_, fragment):
    with pytest.raises(BadParameter, match=None) as info:
        engine.resolve(request_)
    assert fragment in str(info.value)


def test_unknown_and_ambiguous_requests_suggest_demos():
    with pytest.raises(UnknownDemo) as info:
        engine.resolve("make me a sandwich")
    assert len(info.value.nearest) == 3 and info.value.examples
    assert "e.g." in str(info.value)
    with pytest.raises(UnknownDemo) as info:
        engine.resolve({"demo": "receptive_feild", "params": {}})
    assert info.value.nearest[0] == "receptive_field"
    with pytest.raises(UnknownDemo):
        engine.resolve("")


def test_text_is_never_evaluated():
    # a would-be code injection is just text that fails validation, never executed
    with pytest.raises((BadParameter, UnknownDemo)):
        engine.resolve("softmax activations=__import__('os').system('false')")


def test_catalogue_is_serialisable_and_import_is_cheap():
    import json
    import subprocess
    import sys

    specs = [s.to_dict() for s in engine.catalogue()]
    assert len(specs) >= 15 and json.loads(json.dumps(specs))
    code = (
        "import sys, engine; engine.resolve('two stride-2 convs receptive field'); "
        "print(any(m in sys.modules for m in ('torch', 'matplotlib', 'sklearn')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
