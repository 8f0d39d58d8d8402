"""/stats and /leaderboard, end to end, after a real quiz through the bot."""

from __future__ import annotations

import io

from tests.bot_harness import running_tutor


async def test_stats_with_a_png_and_an_opt_in_leaderboard(fake_quiz_retriever, demo_worker, tmp_path) -> None:
    from PIL import Image

    async with running_tutor(fake_quiz_retriever, demo_worker, tmp_path) as w:
        srv, alice, bob = w.server, w.alice, w.bob
        ix = await srv.invoke_slash(alice, w.general, "quiz start", {"questions": 1, "mode": "mc"})
        msg = await ix.wait_message()
        before = msg.embed
        await srv.click(msg, label="A", user=alice)
        await srv.wait_for(lambda: msg.embed != before, timeout=10)
        before = msg.embed
        await srv.click(msg, label="Good", user=alice)
        await srv.wait_for(lambda: msg.embed != before, timeout=10)

        stats = await srv.invoke_slash(alice, w.general, "stats")
        reply = await stats.wait_message(timeout=20)
        fields = {f["name"]: f["value"] for f in reply.embed["fields"]}
        assert reply.ephemeral and fields["Reviews"].startswith("1 ") and "Mastery by topic" in fields
        [attachment] = reply.attachments
        image = Image.open(io.BytesIO(attachment.data))
        image.verify()
        assert image.format == "PNG" and reply.embed["image"]["url"].endswith("progress.png")

        board = await (await srv.invoke_slash(bob, w.general, "leaderboard show")).wait_message()
        assert "Nobody" in board.embed["description"], "nobody is listed without opting in"
        joined = await (await srv.invoke_slash(alice, w.general, "leaderboard join")).wait_message()
        assert joined.ephemeral
        board = await (await srv.invoke_slash(bob, w.general, "leaderboard show")).wait_message()
        assert "alice" in board.embed["description"] and "1 reviews" in board.embed["description"]
        await (await srv.invoke_slash(alice, w.general, "leaderboard leave")).wait_message()
        board = await (await srv.invoke_slash(bob, w.general, "leaderboard show")).wait_message()
        assert "Nobody" in board.embed["description"]
