"""Hostile demo requests: every number is bounded before anything proportional to it is built, numbers in
any spelling (10^12, 1e12, inf, nan) are read whole and refused with the parameter's range, parsing is
bounded in time and memory, and nothing but the engine's own errors comes out (no torch needed, except the
memory-estimate check, which runs in a child process under an address-space limit)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.catalogue import BY_NAME, DEMOS
from engine.core import validate
from engine.errors import BadParameter, EngineError, UnknownDemo
from engine.parse import MAX_TEXT, normalize_demo_request
from engine.request import parse
from engine.spec import MAX_IMAGE_BYTES
from engine.worker import demo_budget
from tutor.demo import _budgeted, demo, read_image

# CPU seconds of this thread (other processes on a busy CI machine do not count): far above a normal
# parse (under 0.1 s), far below the blow-ups this guards against (40-74 s before the fix).
PARSE_SECONDS = 2.0
PARSE_PEAK_BYTES = 50 * 2**20


def bounded(fn):
    """Call ``fn``; only engine errors may come out, within PARSE_SECONDS and PARSE_PEAK_BYTES of Python
    allocations. Returns the result or the engine error."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    t0 = time.thread_time()
    try:
        out = fn()
    except EngineError as exc:
        out = exc
    finally:
        elapsed = time.thread_time() - t0
        _, peak = tracemalloc.get_traced_memory()
        if started:
            tracemalloc.stop()
    assert peak < PARSE_PEAK_BYTES, f"{peak / 2**20:.0f} MB allocated"
    assert elapsed < PARSE_SECONDS, f"{elapsed:.2f} s"  # under tracemalloc, which makes it slower still
    return out


def _warm_up() -> None:
    """Import what the first image or request would (Pillow's plugins, numpy), so no timing includes it."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (4, 4), 128).save(buf, "PNG")
    engine.resolve({"demo": "conv_apply", "params": {"image": buf.getvalue()}})
    engine.resolve("show receptive field after two stride-2 convs")


_warm_up()


def refused(text_or_request) -> str:
    """The BadParameter message for a request that must be refused, checked bounded."""
    out = bounded(lambda: engine.resolve(text_or_request))
    assert isinstance(out, BadParameter), f"{text_or_request!r} -> {out!r}"
    return str(out)


# -- the defects the adversarial pass found ----------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "receptive field after 999999999 stride 2 convs",
        "receptive field after 1e9 stride 2 convs",
        "receptive field after a billion stride 2 convs",
        "receptive field after 10^9 stride-2 convs",
        "receptive field of 99999999999999999999999999999999999999 3x3 convs",
        "output size of W=32 through 999999999 stride 2 convs",
        "conv as matmul with 999999999 convs",
    ],
)
def test_a_layer_count_is_bounded_before_layers_are_built(text):
    message = refused(text)
    assert "at most 12 layers (you asked for " in message


PARSER_CHILD = r"""
import json, resource, sys
import engine
from engine.errors import BadParameter
with open("/proc/self/statm") as f:
    size = int(f.read().split()[0]) * resource.getpagesize()
limit = size + 256 * 2**20  # the parser gets 256 MB more address space; the old code wanted 7 GB
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
out = []
for text in json.loads(sys.argv[1]):
    try:
        engine.resolve(text)
        out.append("accepted")
    except BadParameter as exc:
        out.append(str(exc))
print(json.dumps(out))
"""


def test_hostile_counts_are_refused_under_an_address_space_limit():
    """The same requests in a child process that cannot allocate much: were a count honoured before it is
    bounded again, this fails with a MemoryError there instead of exhausting the machine."""
    texts = [
        "receptive field after 999999999 stride 2 convs",
        "conv output for W=10^12 through 999999999 convs",
        "receptive field with dilation " + ",".join(["2"] * 200),
        "memory estimate batch 4096 image 1024 width 512 blocks 5 classes 10000",
    ]
    out = subprocess.run(
        [sys.executable, "-c", PARSER_CHILD, json.dumps(texts)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout)
    assert results[0] == "receptive_field: at most 12 layers (you asked for 999999999)"
    assert "between 1 and 4096 (got 1000000000000)" in results[1] or "at most 12 layers" in results[1]
    assert results[2] == "receptive_field: at most 12 layers (you gave 200 dilation values)"
    assert results[3] == "accepted"  # within every bound: runs, as arithmetic (below)


def test_the_layer_count_message_names_the_limit_and_the_request():
    message = refused("receptive field after 999999999 stride 2 convs")
    assert message == "receptive_field: at most 12 layers (you asked for 999999999)"


def test_layer_lists_and_segments_are_bounded_too():
    assert "at most 12 layers (you gave 14 kernel values)" in refused(
        "receptive field with kernels " + ", ".join(["3"] * 14)
    )
    assert "at most 12 layers (you asked for 15)" in refused(
        "receptive field of " + " then ".join(["3 convs"] * 5)
    )
    # structured forms: the count is checked before a layer is built, however long the list
    assert "1 to 12 values (got 1000000)" in refused(
        {"demo": "receptive_field", "params": {"layers": [[3, 2]] * 1_000_000}}
    )
    assert "too long" in refused({"demo": "receptive_field", "params": {"layers": "3:2," * 1_000_000}})
    assert "2 to 20 values (got 1000000)" in refused(
        {"demo": "softmax", "params": {"activations": [1.0] * 1_000_000}}
    )
    assert "at most 7x7" in refused(
        {"demo": "conv_apply", "params": {"kernel": "custom", "matrix": [[1] * 1000] * 1000}}
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "conv output for W=10^12 F=3 S=1 P=0",
            "conv_output: size must be between 1 and 4096 (got 1000000000000)",
        ),
        (
            "conv output for W=10**12 F=3 S=1 P=0",
            "conv_output: size must be between 1 and 4096 (got 1000000000000)",
        ),
        ("conv output for W=1e12 F=3 S=1 P=0", "conv_output: size must be between 1 and 4096 (got 1e12)"),
        ("conv output for W=1E+12 F=3 S=1 P=0", "conv_output: size must be between 1 and 4096 (got 1e+12)"),
        ("conv output for W=3 x 10^8 F=3", "conv_output: size must be between 1 and 4096 (got 3e8)"),
        ("conv output for W=2.5 F=3", "conv_output: size must be an integer (got 2.5)"),
        ("lr finder with 10^9 steps", "lr_finder: steps must be between 10 and 500 (got 1000000000)"),
        ("lr finder with 1e12 steps", "lr_finder: steps must be between 10 and 500 (got 1e12)"),
        ("lr finder with 1e999 steps", "lr_finder: steps must be between 10 and 500 (got 1e999)"),
        ("lr finder from 1e-6 to inf", "lr_finder: end_lr must be between 1e-06 and 100 (got inf)"),
        ("init loss for N=infinity", "init_loss: classes must be between 2 and 10000 (got inf)"),
        ("init loss for N=∞", "init_loss: classes must be between 2 and 10000 (got inf)"),
        ("initial softmax loss with two million classes", "between 2 and 10000 (got 2000000)"),
        ("sharpen digit 1e9", "conv_apply: digit must be between 0 and 9 (got 1e9)"),
        ("receptive field with stride 1e9", "layer 1 stride must be between 1 and 8 (got 1e9)"),
        ("receptive field with padding -1", "layer 1 padding must be between 0 and 16 (got -1)"),
        ("conv2d 3->1e9 kernel 7", "param_count: out_channels must be between 1 and 65536 (got 1e9)"),
        ("knn with k=1e3", "knn: k must be between 1 and 51 (got 1e3)"),
        ("xavier vs he on a 1e9-layer relu mlp", "weight_init: depth must be between 2 and 50 (got 1e9)"),
        ("broadcast (1e9, 3) with (3,)", "broadcasting: shape_a must be between 1 and 100000 (got 1e9)"),
        ("memory estimate for batch 10^6", "memory_estimate: batch must be between 1 and 4096 (got 1000000)"),
        ("draw relu from -inf to inf", "activations: x_min must be between -50 and 49 (got -inf)"),
        ("inverted dropout with drop rate 5", "the drop rate must be between 0 and 0.95"),
        ("inverted dropout with drop rate nan", "the drop rate must be between 0 and 0.95"),
        ("dying relu with learning rate nan vs 0.05", "dead_relu: lr_high must be a finite number between"),
        ("init_loss classes=1e400", "init_loss: classes must be between 2 and 10000 (got 1e400)"),
    ],
)
def test_numbers_in_any_spelling_are_read_whole_and_refused_with_the_range(text, message):
    assert message in refused(text)


@pytest.mark.parametrize(
    "text",
    [
        "softmax of nan, inf, -inf",
        "softmax of 1, 2, nan",
        "cross-entropy for logits inf -inf",
        "softmax of NaN, 2",
    ],
)
def test_softmax_refuses_non_finite_logits(text):
    message = refused(text)
    assert message.startswith("softmax: activations must be") and "between -80 and 80" in message
    assert "finite" in message or "(got inf)" in message or "(got -inf)" in message


def test_a_number_no_parameter_takes_is_refused_not_dropped():
    message = refused("softmax of inf")
    assert "inf is not a finite number, and no parameter of softmax takes it" in message
    assert "activations: 2 to 20 numbers between -80 and 80" in message
    assert "beyond every limit" in refused("show receptive field after two stride-2 convs on a 1e300 grid")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # a number with thousands separators is read whole, then held to the range
        ("lr finder with 1,200 steps", "lr_finder: steps must be between 10 and 500 (got 1200)"),
        ("lr finder with 2.5k steps", "lr_finder: steps must be between 10 and 500 (got 2500)"),
        ("lr finder with 1m steps", "lr_finder: steps must be between 10 and 500 (got 1000000)"),
        ("receptive field of 1,000 convs", "receptive_field: at most 12 layers (you asked for 1000)"),
        ("lr_finder steps=1,200", "lr_finder: steps must be between 10 and 500 (got 1,200)"),
        # a comma that does not separate thousands, where one number is read: refused, not read in part
        ("lr finder with 1,2000 steps", "lr_finder: steps takes one number (got 1,2000)"),
        ("lr finder with 1,20 steps", "lr_finder: steps takes one number (got 1,20)"),
        ("lr schedule with lr 0,001", "lr_schedule: lr takes one number (got 0,001)"),
        ("dying relu with learning rate 3,5 vs 0.05", "dead_relu: lr_high takes one number (got 3,5)"),
        (
            "param_count filters 16 and filters 32",
            "param_count: out_channels is 16 here, and I did not understand the number 32 in",
        ),
        ("conv output for a 3,4,5 image", "conv_output: size takes one number (got 3,4,5)"),
        # a list item that starts with 0 is a thousands group or a decimal comma: refused, not read as 0
        ("softmax of 3,1,000", "softmax: activations: I can't read 3,1,000 as a list"),
        ("softmax of 1,05 2", "softmax: activations: I can't read 1,05 2 as a list"),
        # shapes: two, or a clear refusal, never the default shapes
        ("broadcasting 3x4", "broadcasting takes two shapes; I read 1: (3, 4)"),
        ("broadcast (1,2) (3,4) (5,6)", "broadcasting takes two shapes; I read 3"),
        # a number written as a parameter's value that no parameter took
        (
            "adam lr 0.1 and lr 0.5",
            "optimizers: lr is 0.1 here, and I did not understand the number 0.5 in “adam lr 0.1 and lr 0.5”; "
            "give lr once (lr must be between 1e-06 and 10)",
        ),
        # each parameter is compared with its own value: 0.9 is no other reading of lr 0.1 (1 - 0.1)
        ("sgd lr 0.1 and lr 0.9", "optimizers: lr is 0.1 here, and I did not understand the number 0.9"),
        (
            "dropout keep 0.3 and keep 0.7",
            "inverted_dropout: keep is 0.3 here, and I did not understand the number 0.7",
        ),
        # a number before a name that conflicts: said with the demo's ranges, assigned to no parameter
        (
            "leaky relu with slope 0.1 and 0.2 slope",
            "activations: I did not understand the number 0.2 in “…relu with slope 0.1 and 0.2 slope”; "
            "activations takes x_min between -50 and 49; x_max between -49 and 50; slope between 0 and 1",
        ),
        (
            "lr finder with 20% steps",
            "lr_finder: steps must be between 10 and 500, not a percentage (got 20%)",
        ),
        # a number read in part before: whole, or refused
        ("lr finder from 1e-3m to 1", "1e-3m: a k or m after a number in e-form reads two ways"),
        ("memory estimate batch 1_0", "write it without underscores"),
        ("softmax activations=1,000,2", "softmax: activations: I can't read 1,000,2 as a list"),
        ("param_count kernel 3,5", "only square kernels are supported (got 3,5)"),
        # powers: a chain reads two ways; ** between spaces may be bold
        ("conv output for W=2^2^2^2^2^2^2^2^2^2^2", "is a chain of powers, which reads two ways"),
        ("lr schedule over 2**3**2 steps", "2^3^2 is a chain of powers"),
        ("lr finder with 10 ** 12 steps", "“10 ** 12”: write a power without spaces (10**12 or 10^12)"),
        # percentages: a fraction for a rate, refused as written for anything else
        (
            "dropout rate of 120%",
            "the drop rate must be between 0 and 0.95 (keep = 1 - drop, between 0.05 and 1; got 120%)",
        ),
        ("dropout with keep probability 2%", "inverted_dropout: keep must be between 0.05 and 1 (got 2%)"),
        ("lr_finder steps=20%", "lr_finder: steps must be between 10 and 500, not a percentage (got 20%)"),
    ],
)
def test_numbers_are_read_whole_or_refused_never_in_part(text, message):
    assert message in refused(text)


def test_a_huge_integer_is_too_large_not_infinite():
    digits = "9" * 480
    message = refused("softmax of " + digits)
    assert "is too large (beyond every limit: the largest any demo takes is 2147483647)" in message
    assert "not a finite number" not in message and "(480 characters)" in message
    assert "activations: 2 to 20 numbers between -80 and 80" in message
    message = refused({"demo": "init_loss", "params": {"classes": digits}})
    assert (
        message.startswith("init_loss: classes must be between 2 and 10000 (got 999")
        and "480 char" in message
    )
    assert "not a finite number" in refused("softmax of inf")


def test_a_percentage_is_a_fraction_only_for_rates():
    assert engine.resolve({"demo": "inverted_dropout", "params": {"keep": "80%"}}).params["keep"] == 0.8
    assert engine.resolve("dropout with keep 80 %").params["keep"] == 0.8
    assert "not a percentage (got 50%)" in refused({"demo": "lr_schedule", "params": {"lr": "50%"}})


def test_error_json_never_holds_the_image(tmp_path, capsys):
    """A demo that fails after the picture was added: the JSON error echoes the request as given."""
    import io

    from PIL import Image

    from engine.errors import DemoTimeout
    from tutor.demo import _run_requests

    png = tmp_path / "img.png"
    buf = io.BytesIO()
    Image.new("L", (16, 16), 128).save(buf, "PNG")
    png.write_bytes(buf.getvalue())

    def timing_out(request):
        assert "image" in request.params  # the picture did reach the run
        raise DemoTimeout("conv_apply ran past its 0.01 s budget and was stopped")

    for tokens, echoed in [
        (["apply blur"], "apply blur"),
        (["conv_apply", "--kernel", "blur"], {"demo": "conv_apply", "params": {"kernel": "blur"}}),
    ]:
        with pytest.raises(SystemExit) as info:
            _run_requests(tokens, (), png, True, tmp_path, timing_out)
        assert info.value.code == 2
        error = json.loads(capsys.readouterr().out)
        assert error["error"] == "timeout" and error["request"] == echoed and error["image"] == str(png)


def test_cli_json_error_with_an_image_past_the_budget(tmp_path):
    import io

    from PIL import Image

    png = tmp_path / "img.png"
    buf = io.BytesIO()
    Image.new("L", (16, 16), 128).save(buf, "PNG")
    png.write_bytes(buf.getvalue())
    res = CliRunner().invoke(
        demo,
        ["--json", "apply blur", "--image", str(png), "--out", str(tmp_path)],
        env={"TUTOR_DEMO_TIMEOUT_S": "0.01", "TUTOR_BROKER_URL": ""},
    )
    assert res.exit_code == 2, res.output
    error = json.loads(res.output)
    assert error["request"] == "apply blur" and "budget" in error["message"]


def test_ordinary_requests_still_read_the_same():
    assert engine.resolve("softmax of 1, 2, 3 with target 2").params["activations"] == [1.0, 2.0, 3.0]
    assert engine.resolve("lr finder from 1e-6 to 1 over 150 steps").params["steps"] == 150
    assert engine.resolve("conv output for W=2^5 F=3").params["size"] == 32
    assert engine.resolve("draw relu from -2..2").params["x_max"] == 2.0
    assert engine.resolve("lr_schedule over 1e3 steps").params["steps"] == 1000


def test_normalize_demo_request_spells_numbers_as_one_token():
    assert normalize_demo_request("W=10^12") == "w=1000000000000"
    assert normalize_demo_request("10**12 and 10^-3") == "1000000000000 and 0.001"
    assert normalize_demo_request("2^100000") == "inf"
    assert normalize_demo_request("0^-1 and 10^99999999999999999999") == "inf and inf"
    assert normalize_demo_request("3 × 10^8") == "3e8"
    assert normalize_demo_request("3 x 10^2.5 and 10^9.") == "948.683 and 1000000000."
    assert normalize_demo_request("infinity, ∞ and −5") == "inf, inf and -5"
    assert normalize_demo_request("two million and a thousand") == "2000000 and 1000"


# -- the memory estimate never builds real weights ---------------------------------------------------------
MEMORY_CHILD = r"""
import resource, sys, time
import engine
from engine.core import execute, resolve
import torch, matplotlib  # imported before the limit
execute(resolve("memory_estimate image=32 blocks=1"))  # warm: fonts, the plot stack
with open("/proc/self/statm") as f:
    size = int(f.read().split()[0]) * resource.getpagesize()
limit = size + 1536 * 2**20  # 1.5 GB more address space; the real weights would need 340 GB
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
t0 = time.perf_counter()
r = execute(resolve(sys.argv[1]))
print(round(time.perf_counter() - t0, 2), r.numbers["params"], r.numbers["agree"])
"""


def test_the_largest_memory_estimate_is_arithmetic_on_the_meta_device():
    text = "memory estimate batch 4096 image 1024 width 512 blocks 5 classes 10000"
    req = engine.resolve(text)  # all within the bounds: it must run, without allocating the model
    assert req.params["batch"] == 4096 and req.params["blocks"] == 5
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, text], capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-2000:]
    seconds, params, agree = out.stdout.split()
    assert float(seconds) < 15 and int(params) == 85_091_735_824 and agree == "True"


def test_conv_net_modules_are_created_on_meta():
    import torch

    from engine.demos.memory_estimate import conv_net

    net = conv_net(5, 512, 1024, 3, 10000)
    assert all(p.is_meta for p in net.parameters())
    assert sum(p.numel() for p in net.parameters()) == 85_091_735_824
    del torch


# -- structured requests: values of any type and size, JSON of any shape -----------------------------------
@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        ({"demo": "init_loss", "params": {"classes": "1" * 5000}}, "too long"),
        ({"demo": "init_loss", "params": {"classes": "9" * 400}}, "between 2 and 10000"),
        (
            {"demo": "init_loss", "params": {"classes": 10**5000}},
            "between 2 and 10000 (got a number of about",
        ),
        ({"demo": "init_loss", "params": {"classes": float("inf")}}, "between 2 and 10000 (got inf)"),
        ({"demo": "init_loss", "params": {"classes": float("nan")}}, "finite number between 2 and 10000"),
        (
            {"demo": "init_loss", "params": {"weight_scale": 10**400}},
            "between 0 and 10 (got a number of about 400 digits)",
        ),
        ({"demo": "softmax", "params": {"activations": [1, 10**400]}}, "(got a number of about 400 digits)"),
        (
            {"demo": "conv_apply", "params": {"image": [["1e999"] * 3] * 3}},
            "finite number (1e999 is too large)",
        ),
        ({"demo": "init_loss", "params": {"weight_scale": "-inf"}}, "between 0 and 10 (got -inf)"),
        ({"demo": "init_loss", "params": {"classes": [3]}}, "must be an integer"),
        ({"demo": "init_loss", "params": {"classes": True}}, "must be an integer"),
        ({"demo": "softmax", "params": {"activations": "1, nan"}}, "finite number between -80 and 80"),
        ({"demo": "conv_apply", "params": {"kernel": "custom", "matrix": "[[1, inf], [0, 1]]"}}, "(got inf)"),
        ({"demo": "receptive_field", "params": {"layers": [{"kernel": "nan"}]}}, "kernel must be between"),
        ({"demo": "receptive_field", "params": {"layers": [{"kernel": 10**5000}]}}, "kernel must be between"),
        ({"demo": "lr_schedule", "params": {"kind": 10**5000}}, "must be one of"),
        ({"demo": "knn", "params": {"distance": 3}}, "must be one of"),
        ({"demo": 10**5000, "params": {}}, "named by text"),
        ({"demo": "knn", "params": {1: 2, "x": 3}}, "has no parameter"),
        ('{"demo": "init_loss", "params": {"classes": ' + "9" * 5000 + "}}", "too large"),
        ("{" + '"a":[' * 100_000, "JSON"),
        ('{"demo": "init_loss", "params": {"classes": NaN}}', "finite number between 2 and 10000"),
        ('{"demo": "init_loss", "params": {"classes": 1e999}}', "between 2 and 10000 (got inf)"),
        ({"demo": "conv_apply", "params": {"image": "A" * (MAX_IMAGE_BYTES * 2)}}, "the limit is 8 MB"),
    ],
)
def test_structured_values_of_any_size_and_type_are_refused_cleanly(request_, fragment):
    assert fragment in refused(request_)


def test_an_unknown_demo_name_of_any_length_is_cheap():
    out = bounded(lambda: engine.resolve({"demo": "x" * 1_000_000, "params": {}}))
    assert isinstance(out, UnknownDemo) and len(str(out)) < 400


# -- bounded time on adversarial text -------------------------------------------------------------------------
BODIES = [
    "1" * 500, "1," * 250, "1 " * 250, "1x" * 250, "1." * 250, "1e" * 250, "e1" * 250, "9^9" * 166,
    "10^" * 166, "2**" * 166, " ," * 250, "[[" * 250, "[[1," * 125, "(1," * 166, "- " * 250, "-1" * 250,
    "nan " * 125, "inf," * 125, "stride 2 " * 55, "3x3 " * 125, "conv" * 125, "1 conv" * 83, "= " * 250,
    "--a " * 125, "a=" * 250, "1" * 250 + "x" + "1" * 249, "1e+" * 166, "1e308 " * 83, "∞" * 500,
    "٣x٣ " * 125, "thousand " * 55, "1 - 2 - " * 62, "0.1.1.1" * 71, "kernel 3, " * 50,
    "1,000," * 83, "1,2" * 166, "**" * 250, "*a" * 250, "_a" * 250, "`" * 500, "1 **" * 125, "1 %" * 166,
    "2^2" * 166, "1k " * 166, "in 1 " * 100, "steps 1," * 62,
]  # fmt: skip
PREFIXES = ["", "receptive field ", "conv output ", "softmax of ", "broadcast ", "memory estimate ", "knn "]


def test_parsing_adversarial_text_is_fast():
    slowest = (0.0, "")
    for prefix in PREFIXES:
        for body in BODIES:
            text = (prefix + body)[:MAX_TEXT]
            t0 = time.thread_time()
            with contextlib.suppress(EngineError):
                engine.resolve(text)
            slowest = max(slowest, (time.thread_time() - t0, text[:60]))
    assert slowest[0] < PARSE_SECONDS, slowest


# -- property tests -----------------------------------------------------------------------------------------
KEYWORDS = sorted(
    {d.name for d in DEMOS}
    | {e for d in DEMOS for e in d.examples}
    | {w for d in DEMOS for p in d.params for w in p.words}
    | {
        "stride 2", "stride-2", "convs", "layers", "then", "W=", "F=", "S=", "P=", "kernel", "target",
        "steps", "lr", "from", "to", "between", "->", "[[", "]]", "[", "]", "(", ")", "=", "--steps ",
        "x", "same", "dilation", "padding", "with", "vs", "drop rate", "nn", "gb", "image", "batch",
    }
)  # fmt: skip
SPELLED_NUMBERS = [
    *"1e308 1e999 -1e308 inf -inf +inf infinity nan NaN ∞ -∞ 1E+12 10**12 2**1000 0^-1 0.0^-0.5 1e-400".split(),
    *".5 5. 1..5 3x10^400 1,000,000 0x10 1_000 ١٢ １２ ²".split(),
    *("a billion", "two million", "3 x 10^400", "10 ^ 12"),
]
NUMBERS = st.one_of(
    st.integers().map(str),
    st.integers(1, 450).map(lambda k: "9" * k),
    st.integers(-400, 400).map(lambda k: f"10^{k}"),
    st.integers(-400, 400).map(lambda k: f"1e{k}"),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(SPELLED_NUMBERS),
)
SEPARATORS = st.sampled_from([",", " ", ", ", ";", " and ", "x", "-", "^", "**", "\n", "\t", "...", "=", ":"])
PIECES = st.one_of(
    st.sampled_from(KEYWORDS),
    NUMBERS,
    SEPARATORS,
    st.tuples(SEPARATORS, st.integers(1, 200)).map(lambda t: t[0] * t[1]),
    st.text(max_size=6),
)
HOSTILE = st.lists(PIECES, max_size=60).map(lambda parts: " ".join(parts)[: MAX_TEXT + 20])
# an example parses up to three times, each call held to PARSE_SECONDS by bounded(); the deadline is the sum
PROPERTY = settings(
    max_examples=200,
    deadline=timedelta(seconds=3 * PARSE_SECONDS),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(st.one_of(st.text(max_size=MAX_TEXT + 20), HOSTILE))
def test_any_text_parses_to_a_request_or_an_engine_error(text):
    parsed = bounded(lambda: parse(text))
    if isinstance(parsed, EngineError):
        return
    assert parsed.demo in BY_NAME
    checked = bounded(lambda: validate(parsed.demo, parsed.params))
    if not isinstance(checked, EngineError):
        again = bounded(lambda: engine.resolve(text))
        assert not isinstance(again, EngineError) and again.params == checked
        json.dumps(checked)  # plain data: it crosses a process boundary


VALUES = st.one_of(
    NUMBERS,
    st.integers(),
    st.just(10**5000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=40),
    st.lists(st.one_of(st.integers(), st.floats(), st.text(max_size=5)), max_size=30),
    st.lists(st.lists(st.integers(-1000, 1000), max_size=9), max_size=9),
    st.dictionaries(
        st.sampled_from(["kernel", "stride", "padding", "dilation", "x"]), NUMBERS, max_size=4
    ).map(lambda d: [d]),
)


@PROPERTY
@given(
    st.sampled_from([d.name for d in DEMOS]).flatmap(
        lambda name: st.fixed_dictionaries(
            {"demo": st.just(name)},
            optional={
                "params": st.dictionaries(st.sampled_from([p.name for p in BY_NAME[name].params]), VALUES)
            },
        )
    )
)
def test_any_structured_request_validates_or_raises_an_engine_error(request_):
    bounded(lambda: engine.resolve(request_))


# -- the command line: the image's size before it is read, and the bot's budget ----------------------------
def test_an_image_file_is_refused_by_its_size_before_it_is_read(tmp_path):
    big = tmp_path / "huge.png"
    with big.open("wb") as f:
        f.truncate(3 * 1024**3)  # sparse: 3 GB long, no disk used
    out = bounded(lambda: read_image(big))
    assert isinstance(out, BadParameter) and str(out) == "image: the image is 3072.0 MB; the limit is 8 MB"
    res = CliRunner().invoke(demo, ["apply a left edge kernel", "--image", str(big)])
    assert res.exit_code == 2 and "conv_apply: image: the image is 3072.0 MB; the limit is 8 MB" in res.output


def test_an_image_that_is_not_a_regular_file_is_refused():
    out = bounded(lambda: read_image(Path("/dev/zero")))
    assert isinstance(out, BadParameter) and "not a regular file" in str(out)


def test_cli_demos_get_the_bots_budget():
    assert demo_budget("lr_finder") == BY_NAME["lr_finder"].budget_s == 30
    assert demo_budget("lr_finder", 60.0) == 30 and demo_budget("lr_finder", 5) == 5
    seen = []

    def fake_run(request, budget_s=None):
        seen.append((request.demo, budget_s))
        return request

    run = _budgeted(fake_run, 12.0)
    run("lr finder over 80 steps")
    run({"demo": "softmax", "params": {}})
    assert seen == [("lr_finder", 12.0), ("softmax", 12.0)]
    with pytest.raises(BadParameter):  # refused before anything runs
        run("lr finder with 10^9 steps")
    assert len(seen) == 2


def test_cli_stops_a_demo_past_the_budget(tmp_path):
    res = CliRunner().invoke(
        demo,
        ["lr_finder", "--steps", "500", "--out", str(tmp_path)],
        env={"TUTOR_DEMO_TIMEOUT_S": "0.05", "TUTOR_BROKER_URL": ""},
    )
    assert res.exit_code == 2, res.output
    assert "lr_finder ran past its 0.05 s budget and was stopped" in res.output
