"""The killable worker (budget -> DemoTimeout, then recovery) and the `tutor demo` CLI."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

import engine
from engine.worker import DemoWorker
from tutor.demo import demo


@pytest.fixture(scope="module")
def worker():
    with DemoWorker(env={"ENGINE_THREADS": "1"}) as w:
        yield w.start()


def test_worker_runs_and_stays_warm(worker):
    pid = worker.pid
    r = worker.run("show receptive field after two stride-2 convs")
    assert r.numbers["size"] == 7 and r.images[0][:4] == b"\x89PNG"
    assert worker.run("conv2d 3->64 kernel 7").numbers["params"] == 9472
    assert worker.pid == pid  # same warm process


def test_worker_timeout_kills_and_recovers(worker):
    old = worker.pid
    with pytest.raises(engine.DemoTimeout, match="budget"):
        worker.run({"demo": "lr_finder", "params": {"steps": 500}}, budget_s=0.05)
    assert worker.restarts >= 1
    r = worker.run("expected loss at init for 10 classes")
    assert r.numbers["classes"] == 10 and worker.pid != old


def test_worker_errors_and_async(worker):
    with pytest.raises(engine.UnknownDemo):
        worker.submit("make me a sandwich")
    with pytest.raises(engine.BadParameter):  # raised in the worker, re-raised here with its type
        worker.run("softmax of 1, 2 with target 5")

    async def go():
        return await asyncio.gather(
            worker.run_async("softmax of 1, 2, 3"), worker.run_async("init_loss classes=4")
        )

    a, b = asyncio.run(go())
    assert a.demo == "softmax" and b.numbers["classes"] == 4


def test_worker_busy():
    w = DemoWorker(max_pending=0)
    try:
        with pytest.raises(engine.EngineBusy):
            w.submit("softmax of 1, 2")
    finally:
        w.close()


def test_cli_json_out(tmp_path):
    res = CliRunner().invoke(
        demo, ["show receptive field after two stride-2 convs", "--json", "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert set(d) == {"demo", "params", "result", "text", "images", "device", "elapsed_ms"}
    assert d["result"]["size"] == 7 and all(p.endswith(".png") for p in d["images"])
    assert (tmp_path / d["images"][0].split("/")[-1]).read_bytes()[:4] == b"\x89PNG"


def test_cli_structured_list_and_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        demo, ["receptive_field", "--layers", "3:2,3:2,3:2", "--json", "--out", str(tmp_path)]
    )
    assert res.exit_code == 0 and json.loads(res.output)["result"]["size"] == 15
    res = runner.invoke(
        demo,
        [
            "param_count",
            "--param",
            "in_channels=8",
            "--param",
            "out_channels=16",
            "--kernel",
            "3",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0 and "1168" in res.output
    res = runner.invoke(demo, ["--list"])
    assert res.exit_code == 0 and all(s.name in res.output for s in engine.catalogue())
    res = runner.invoke(demo, ["make me a sandwich", "--json"])
    assert res.exit_code != 0 and json.loads(res.output)["error"] == "unknown_demo"
    res = runner.invoke(demo, ["init_loss", "--classes", "1"])
    assert res.exit_code != 0 and "between 2 and 10000" in res.output


def test_cli_image_for_conv_apply(tmp_path):
    from PIL import Image

    picture = tmp_path / "box.jpg"
    Image.new("RGB", (48, 32), "white").save(picture)
    runner = CliRunner()
    res = runner.invoke(
        demo, ["apply a left edge kernel", "--image", str(picture), "--json", "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["demo"] == "conv_apply" and d["params"]["image"] == "32 x 48 (H x W) grayscale image"
    assert d["result"]["input"] == "upload" and d["result"]["out_max"] == pytest.approx(0, abs=1e-5)
    res = runner.invoke(demo, ["receptive field after two stride-2 convs", "--image", str(picture)])
    assert res.exit_code == 2 and "receptive_field does not take an image; conv_apply does" in res.output


def test_cli_stdin_lines(tmp_path):
    lines = 'softmax of 1, 2, 3\nnonsense request here\n{"demo": "init_loss", "params": {"classes": 5}}\n'
    res = CliRunner().invoke(demo, ["--json", "-", "--out", str(tmp_path)], input=lines)
    out = [json.loads(x) for x in res.output.strip().splitlines()]
    assert [o.get("demo") or o["error"] for o in out] == ["softmax", "unknown_demo", "init_loss"]
    assert res.exit_code == 1  # one bad line, the others still ran
