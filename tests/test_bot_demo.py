"""``/demo`` and the "Show me" button, end to end: the real bot and the engine's real worker process."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest
from PIL import Image

import engine
from tests.bot_harness import World, running_tutor
from tests.fakediscord import CB_DEFERRED_MESSAGE, CB_MESSAGE, DiscordServer, FakeMessage

DEMO_WAIT = 60.0  # the first demo also starts the worker process (imports torch)


@pytest.fixture
async def world(fake_retriever, demo_worker, tmp_path) -> AsyncIterator[World]:
    async with running_tutor(fake_retriever, demo_worker, tmp_path) as w:
        yield w


@pytest.fixture(scope="module")
def cold_worker():
    """A worker of its own, not started: its first demo pays for starting a process and importing torch."""
    from engine import DemoWorker

    worker = DemoWorker()
    yield worker
    worker.close()


def png_of(msg: FakeMessage) -> Image.Image:
    [attachment] = msg.attachments[:1]
    assert attachment.content_type == "image/png" and attachment.filename.endswith(".png")
    image = Image.open(io.BytesIO(attachment.data))
    image.load()  # decodes every byte
    return image


def numbers(msg: FakeMessage) -> dict[str, str]:
    return {f["name"]: f["value"] for f in msg.embed.get("fields", [])}


async def test_autocomplete_offers_the_catalogue(world: World) -> None:
    srv = world.server
    everything = await srv.autocomplete(
        world.alice, world.general, "demo", {"request": ""}, focused="request"
    )
    assert len(everything) == len(engine.catalogue()) and everything[0]["value"] == "receptive_field"
    typed = await srv.autocomplete(
        world.alice, world.general, "demo", {"request": "recep"}, focused="request"
    )
    values = [c["value"] for c in typed]
    assert values[0] == "recep" and "receptive_field" in values
    assert "show receptive field after two stride-2 convs" in values
    assert all(len(c["name"]) <= 100 and len(c["value"]) <= 100 for c in everything + typed)


async def test_demo_defers_then_follows_up_with_a_png_and_numbers(world: World) -> None:
    ix = await world.server.invoke_slash(
        world.alice, world.general, "demo", {"request": "show receptive field after two stride-2 convs"}
    )
    await ix.wait_response()
    assert ix.response_type == CB_DEFERRED_MESSAGE and ix.latency is not None and ix.latency < 1
    msg = await ix.wait_message(timeout=DEMO_WAIT)
    assert msg.embed["title"] == "Demo: receptive_field"
    assert numbers(msg)["size"] == "7"
    assert msg.embed["image"]["url"] == f"attachment://{msg.attachments[0].filename}"
    image = png_of(msg)
    assert image.format == "PNG" and min(image.size) > 100
    assert not msg.pings_anyone


async def test_structured_options_override_the_request(world: World) -> None:
    srv = world.server
    ix = await srv.invoke_slash(
        world.alice, world.general, "demo", {"request": "receptive_field", "layers": "3:1,3:1,3:1"}
    )
    msg = await ix.wait_message(timeout=DEMO_WAIT)
    assert numbers(msg)["size"] == "7" and "stride: 1" in msg.embed["footer"]["text"]
    ix = await srv.invoke_slash(world.bob, world.general, "demo", {"request": "receptive_field", "size": 32})
    reply = await ix.wait_message()
    assert ix.response_type == CB_MESSAGE and reply.ephemeral
    assert "receptive_field has no parameter size" in reply.content


async def test_unknown_demo_is_explained_at_once(world: World) -> None:
    ix = await world.server.invoke_slash(world.alice, world.general, "demo", {"request": "bake me a cake"})
    reply = await ix.wait_message()
    assert ix.response_type == CB_MESSAGE and reply.ephemeral and ix.latency < 1
    assert "Nearest demos" in reply.content and "/demo" in reply.content


async def test_overlong_request_is_refused_with_the_limit(world: World) -> None:
    from engine.parse import MAX_TEXT

    srv = world.server
    text = "receptive field after two stride-2 convs, " * 15  # 630 characters, over the engine's limit
    typed = await srv.autocomplete(world.alice, world.general, "demo", {"request": text}, focused="request")
    [choice] = typed
    assert f"at most {MAX_TEXT} characters" in choice["name"] and len(choice["value"]) <= 100
    ix = await srv.invoke_slash(world.alice, world.general, "demo", {"request": text})
    reply = await ix.wait_message()
    assert ix.response_type == CB_MESSAGE and reply.ephemeral
    assert f"request too long ({len(text)} characters; the limit is {MAX_TEXT})" in reply.content
    assert world.services.demos.in_flight == 0


async def test_show_me_runs_the_demo_that_illustrates_the_answer(world: World) -> None:
    srv = world.server
    ix = await srv.invoke_slash(world.alice, world.general, "ask", {"question": "what is a receptive field"})
    answer = await ix.wait_message()
    click = await srv.click(answer, label="Show me")
    await click.wait_response()
    assert click.response_type == CB_DEFERRED_MESSAGE
    shown = await click.wait_message(timeout=DEMO_WAIT)
    assert shown.embed["title"] == "Demo: receptive_field" and png_of(shown).format == "PNG"


async def test_one_demo_per_user_at_a_time(world: World) -> None:
    srv = world.server
    first = await srv.invoke_slash(world.alice, world.general, "demo", {"request": "softmax of 1, 2, 3"})
    await first.wait_response()
    second = await srv.invoke_slash(world.alice, world.general, "demo", {"request": "receptive_field"})
    busy = await second.wait_message()
    assert busy.ephemeral and "already have a demo running" in busy.content
    other = await srv.invoke_slash(world.bob, world.general, "demo", {"request": "receptive_field"})
    assert (await first.wait_message(timeout=DEMO_WAIT)).embed["title"] == "Demo: softmax"
    assert (await other.wait_message(timeout=DEMO_WAIT)).embed["title"] == "Demo: receptive_field"
    assert world.services.demos.in_flight == 0


async def test_slow_demo_is_deferred_within_the_deadline(fake_retriever, cold_worker, tmp_path) -> None:
    async with (
        DiscordServer(ack_deadline=0.5) as srv,
        running_tutor(fake_retriever, cold_worker, tmp_path, server=srv) as w,
    ):
        ix = await srv.invoke_slash(w.alice, w.general, "demo", {"request": "softmax of 1, 2, 3"})
        msg = await ix.wait_message(timeout=DEMO_WAIT)
        assert ix.response_type == CB_DEFERRED_MESSAGE and ix.latency < 0.5 and not ix.rejected
        [follow_up] = srv.calls("POST", "/webhooks/{}/{}")
        assert follow_up.at - ix.created_at > 0.5, "the demo (with the worker's start) outlasted the deadline"
        assert png_of(msg).format == "PNG"


async def test_timed_out_demo_says_so(fake_retriever, cold_worker, tmp_path) -> None:
    async with running_tutor(fake_retriever, cold_worker, tmp_path, demo_timeout_s=0.001) as w:
        ix = await w.server.invoke_slash(w.alice, w.general, "demo", {"request": "receptive_field"})
        msg = await ix.wait_message(timeout=DEMO_WAIT)
        assert "took too long" in msg.content and "budget" in msg.content
        await asyncio.sleep(0)
        assert w.services.demos.in_flight == 0


def _square_png(width: int = 90, height: int = 60) -> bytes:
    picture = Image.new("RGB", (width, height), "white")
    picture.paste((0, 0, 0), (20, 15, 70, 45))  # a black box: two horizontal edges for a top-edge kernel
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


async def demo_with_image(world: World, user, request: str, filename: str, data: bytes):
    """Invoke /demo with ``request`` and an attachment; returns the interaction."""
    return await world.server.invoke_slash(
        user, world.general, "demo", {"request": request, "image": (filename, data)}
    )


async def test_conv_apply_runs_on_an_uploaded_image(world: World) -> None:
    ix = await demo_with_image(world, world.alice, "apply a top edge kernel", "box.png", _square_png())
    await ix.wait_response()
    assert ix.response_type == CB_DEFERRED_MESSAGE and ix.latency < 3
    msg = await ix.wait_message(timeout=DEMO_WAIT)
    assert msg.embed["title"] == "Demo: conv_apply"
    assert "your image (43 x 64 pixels, H x W" in msg.embed["description"]
    assert (
        "43 x 64 (H x W) grayscale image" in msg.embed["footer"]["text"]
        and "digit" not in msg.embed["footer"]["text"]
    )
    assert png_of(msg).format == "PNG"


async def test_uploads_that_cannot_be_used_are_refused(world: World) -> None:
    ix = await demo_with_image(world, world.alice, "apply a top edge kernel", "notes.txt", b"hi")
    reply = await ix.wait_message()
    assert ix.response_type == CB_MESSAGE and reply.ephemeral and "notes.txt is not an image" in reply.content
    ix = await demo_with_image(world, world.alice, "apply a top edge kernel", "fake.png", b"x" * 50)
    reply = await ix.wait_message(timeout=DEMO_WAIT)
    assert "not an image I can read" in reply.content
    ix = await demo_with_image(world, world.bob, "receptive_field", "box.png", _square_png())
    reply = await ix.wait_message(timeout=DEMO_WAIT)
    assert "receptive_field does not use an image" in reply.content
    # memory_estimate has a numeric parameter called "image": a picture is still not for it
    ix = await demo_with_image(world, world.bob, "memory_estimate", "box.png", _square_png())
    reply = await ix.wait_message(timeout=DEMO_WAIT)
    assert "memory_estimate does not use an image" in reply.content
    assert world.services.demos.in_flight == 0
