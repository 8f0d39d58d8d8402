"""``/demo``: defer at once, run the demo in the engine's worker, follow up with the plots and numbers.

``request`` takes plain language ("receptive field after two stride-2 convs") or a demo name, with
autocomplete over the catalogue. The options after it are structured parameters shared by the common demos
(``layers``, ``size``, ``steps``, ``lr``, ``seed``, and an ``image`` attachment); they override what the
request text says, and a demo without that parameter says so. Their bounds and the demos named in their
descriptions come from the demos' specs (`engine.catalogue.shared_param`): the widest bounds of the demos
that take the parameter, each demo still checking its own. Nothing here repeats a demo's numbers.

Reading the request (parsing, the nearest demos) is plain Python whose cost grows with the text: it runs
in a thread, on at most ``MAX_REQUEST`` characters (the engine's own limit).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

import engine
from bot.demos import demo_reply
from bot.formatting import CHOICE_NAME_LIMIT, shorten
from engine import DemoRequest
from engine.catalogue import BY_NAME, SharedParam, nearest, shared_param
from engine.errors import BadParameter
from engine.parse import MAX_TEXT
from engine.spec import MAX_IMAGE_BYTES, MAX_VALUE_CHARS

if TYPE_CHECKING:
    from bot.bot import TutorBot

MAX_CHOICES = 25
MAX_REQUEST = MAX_TEXT  # longer requests are refused by the engine ("request too long")
OPTION_DESCRIPTION_LIMIT = 100  # Discord's limit on an option's description

# the structured options: parameters several demos share, as the catalogue states them
LAYERS, SIZE, STEPS, LR, SEED = (shared_param(name) for name in ("layers", "size", "steps", "lr", "seed"))
IMAGE_DEMOS = tuple(spec.name for spec in engine.catalogue() if spec.takes_image)
IMAGE_MB = MAX_IMAGE_BYTES // 2**20


def _range(kind: type, param: SharedParam):
    """A slash option's type with the parameter's widest bounds (Discord refuses values outside them)."""
    return app_commands.Range[kind, kind(param.lo), kind(param.hi)]


def _describe(what: str, demos: tuple[str, ...] = ()) -> str:
    said = f"{what} ({', '.join(demos)})" if demos else what
    return shorten(said, OPTION_DESCRIPTION_LIMIT)


Layers = app_commands.Range[str, 1, MAX_VALUE_CHARS]  # a layer list as text; the engine reads at most this
Size = _range(int, SIZE)
Steps = _range(int, STEPS)
Lr = _range(float, LR)
Seed = _range(int, SEED)


def demo_choices(current: str) -> list[app_commands.Choice[str]]:
    """Autocomplete: the user's own phrasing first, then demos and example requests that match it."""
    text = " ".join(current.split())
    if len(text) > MAX_REQUEST:
        note = f"Too long: a request is at most {MAX_REQUEST} characters ({len(text)} typed)"
        return [app_commands.Choice(name=shorten(note, CHOICE_NAME_LIMIT), value=text[:CHOICE_NAME_LIMIT])]
    specs = engine.catalogue()
    if not text:
        return [
            app_commands.Choice(name=shorten(f"{s.name}: {s.summary}", CHOICE_NAME_LIMIT), value=s.name)
            for s in specs
        ][:MAX_CHOICES]
    low = text.lower()
    choices: dict[str, str] = {}  # value -> name, in insertion order
    if len(text) <= CHOICE_NAME_LIMIT:
        choices[text] = text
    for spec in specs:
        if low in spec.name or low.replace(" ", "_") in spec.name or low in spec.summary.lower():
            choices.setdefault(spec.name, shorten(f"{spec.name}: {spec.summary}", CHOICE_NAME_LIMIT))
        for example in spec.examples:
            if low in example.lower() and len(example) <= CHOICE_NAME_LIMIT:
                choices.setdefault(example, example)
    if len(choices) <= 1:
        for name in nearest(text):
            spec = next(s for s in specs if s.name == name)
            choices.setdefault(name, shorten(f"{name}: {spec.summary}", CHOICE_NAME_LIMIT))
    return [app_commands.Choice(name=name, value=value) for value, name in choices.items()][:MAX_CHOICES]


def check_image(attachment: discord.Attachment) -> None:
    """Refuse what is clearly not a picture, or too large, before downloading it."""
    if attachment.size > MAX_IMAGE_BYTES:
        raise BadParameter(f"the image is {attachment.size / 2**20:.1f} MB; the limit is {IMAGE_MB} MB")
    if attachment.content_type and not attachment.content_type.startswith("image/"):
        raise BadParameter(f"{attachment.filename} is not an image ({attachment.content_type})")


class Demos(commands.Cog):
    """Runs demos through the bot's ``DemoQueue``; the engine decides what a request means."""

    def __init__(self, bot: TutorBot) -> None:
        self.bot = bot

    def build_request(self, request: str, overrides: dict[str, Any]) -> DemoRequest:
        """The request text, then the structured options on top; validated before anything is queued."""
        resolved = self.bot.demos.resolve(request)
        given = {name: value for name, value in overrides.items() if value is not None}
        if not given:
            return resolved
        if "image" in given and not BY_NAME[resolved.demo].takes_image:
            raise BadParameter(
                f"{resolved.demo} does not use an image; attach one to a {' or '.join(IMAGE_DEMOS)} request, "
                f"e.g. “{BY_NAME[IMAGE_DEMOS[0]].examples[0]}”"
            )
        return self.bot.demos.resolve(DemoRequest(resolved.demo, {**resolved.params, **given}, resolved.text))

    @app_commands.command(name="demo", description="Run a live deep-learning demonstration and plot it.")
    @app_commands.describe(
        request="What to show, e.g. receptive field after two stride-2 convs (start typing for ideas)",
        layers=_describe("conv layers as kernel:stride[:padding[:dilation]], e.g. 3:2,3:2", LAYERS.demos),
        size=_describe("input size in pixels", SIZE.demos),
        steps=_describe("training or schedule steps", STEPS.demos),
        lr=_describe("learning rate", LR.demos),
        seed=_describe("random seed: the same seed gives the same result"),
        image=_describe(f"your own picture for {', '.join(IMAGE_DEMOS)} (PNG/JPEG, up to {IMAGE_MB} MB)"),
    )
    async def demo(
        self,
        interaction: discord.Interaction,
        request: app_commands.Range[str, 1, MAX_REQUEST],
        layers: Layers | None = None,
        size: Size | None = None,
        steps: Steps | None = None,
        lr: Lr | None = None,
        seed: Seed | None = None,
        image: discord.Attachment | None = None,
    ) -> None:
        overrides: dict[str, Any] = {"layers": layers, "size": size, "steps": steps, "lr": lr, "seed": seed}
        if image is None:  # checked before deferring, so a bad request gets a private error at once
            job = await asyncio.to_thread(self.build_request, request, overrides)
        else:
            check_image(image)
        async with self.bot.demos.slot(interaction.user.id):
            await interaction.response.defer(thinking=True)
            if image is not None:  # downloading may take a while: after the defer
                overrides["image"] = await image.read()
                job = await asyncio.to_thread(self.build_request, request, overrides)
            result = await self.bot.demos.run(job)
        embed, files = demo_reply(result)
        await interaction.followup.send(embed=embed, files=files)

    @demo.autocomplete("request")
    async def demo_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await asyncio.to_thread(demo_choices, current)
