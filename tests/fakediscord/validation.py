"""Payload checks that mirror the API: message, embed and component limits, empty messages, command
schemas, autocomplete choices and modals. Each raises the ``DiscordAPIError`` Discord would answer with."""

from __future__ import annotations

from typing import Any

from .constants import (
    COMMAND_NAME_RE,
    FLAG_COMPONENTS_V2,
    MAX_ACTION_ROWS,
    MAX_AUTHOR_NAME,
    MAX_BUTTON_LABEL,
    MAX_CHOICE_NAME,
    MAX_CHOICES,
    MAX_CONTENT,
    MAX_CUSTOM_ID,
    MAX_EMBED_DESCRIPTION,
    MAX_EMBED_FIELDS,
    MAX_EMBED_TITLE,
    MAX_EMBED_TOTAL,
    MAX_EMBEDS,
    MAX_FIELD_NAME,
    MAX_FIELD_VALUE,
    MAX_FILES,
    MAX_FOOTER,
    MAX_MODAL_TITLE,
    MAX_ROW_ITEMS,
    MAX_SELECT_OPTIONS,
)
from .errors import DiscordAPIError, invalid_form


class Validator:
    """What the API refuses. Stateless; the REST routes and ``BotMessages`` share the server's one."""

    def message(self, payload: dict[str, Any], n_files: int, *, creating: bool) -> None:
        """Raise the error Discord would for an over-long or empty message."""
        errors: dict[str, Any] = {}
        content = payload.get("content")
        if content is not None and not isinstance(content, str):
            _err(errors, "content", "BASE_TYPE_STRING", "Must be a string.")
        _check_len(errors, "content", content, MAX_CONTENT)
        _validate_embeds(errors, payload.get("embeds") or [])
        _validate_components(errors, payload.get("components") or [], int(payload.get("flags") or 0))
        if n_files > MAX_FILES:
            _err(errors, "files", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FILES} or fewer in length.")
        if errors:
            raise invalid_form(errors)
        if creating and not (
            content
            or payload.get("embeds")
            or payload.get("components")
            or n_files
            or payload.get("sticker_ids")
            or payload.get("poll")
        ):
            raise DiscordAPIError(400, 50006, "Cannot send an empty message")

    def commands(self, payloads: list[dict[str, Any]]) -> None:
        """Application commands as a bulk overwrite (or one created alone) sends them: names, descriptions,
        options (required first, at most 25, choices at most 25)."""
        errors: dict[str, Any] = {}
        for i, data in enumerate(payloads):
            _validate_command(data, i, errors)
        if errors:
            raise invalid_form(errors)

    def choices(self, choices: list[dict[str, Any]]) -> None:
        """An autocomplete answer's choices."""
        errors: dict[str, Any] = {}
        if len(choices) > MAX_CHOICES:
            _err(errors, "data.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for i, choice in enumerate(choices):
            name = choice.get("name", "")
            if not 1 <= len(name) <= MAX_CHOICE_NAME:
                _err(
                    errors,
                    f"data.choices.{i}.name",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
            value = choice.get("value")
            if isinstance(value, str) and len(value) > MAX_CHOICE_NAME:
                _err(
                    errors,
                    f"data.choices.{i}.value",
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 100 or fewer in length.",
                )
        if errors:
            raise invalid_form(errors)

    def modal(self, data: dict[str, Any]) -> None:
        """A modal response: a title of 1 to 45 characters, a custom id and components."""
        errors: dict[str, Any] = {}
        title = data.get("title") or ""
        if not 1 <= len(title) <= MAX_MODAL_TITLE:
            _err(errors, "data.title", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length.")
        if not data.get("custom_id"):
            _err(errors, "data.custom_id", "BASE_TYPE_REQUIRED", "This field is required")
        if not data.get("components"):
            _err(errors, "data.components", "BASE_TYPE_REQUIRED", "This field is required")
        if errors:
            raise invalid_form(errors)


def _err(errors: dict[str, Any], path: str, code: str, message: str) -> None:
    node = errors
    for part in path.split("."):
        node = node.setdefault(part, {})
    node.setdefault("_errors", []).append({"code": code, "message": message})


def _check_len(errors: dict[str, Any], path: str, value: Any, limit: int) -> None:
    if isinstance(value, str) and len(value) > limit:
        _err(errors, path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _validate_embeds(errors: dict[str, Any], embeds: list[dict[str, Any]]) -> None:
    if len(embeds) > MAX_EMBEDS:
        _err(errors, "embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        p = f"embeds.{i}"
        _check_len(errors, f"{p}.title", embed.get("title"), MAX_EMBED_TITLE)
        _check_len(errors, f"{p}.description", embed.get("description"), MAX_EMBED_DESCRIPTION)
        _check_len(errors, f"{p}.footer.text", embed.get("footer", {}).get("text"), MAX_FOOTER)
        _check_len(errors, f"{p}.author.name", embed.get("author", {}).get("name"), MAX_AUTHOR_NAME)
        fields = embed.get("fields", [])
        if len(fields) > MAX_EMBED_FIELDS:
            _err(
                errors,
                f"{p}.fields",
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_EMBED_FIELDS} or fewer in length.",
            )
        for j, f in enumerate(fields):
            if not f.get("name") or not f.get("value"):
                _err(errors, f"{p}.fields.{j}", "BASE_TYPE_REQUIRED", "This field is required")
            _check_len(errors, f"{p}.fields.{j}.name", f.get("name"), MAX_FIELD_NAME)
            _check_len(errors, f"{p}.fields.{j}.value", f.get("value"), MAX_FIELD_VALUE)
            total += len(f.get("name") or "") + len(f.get("value") or "")
        total += sum(
            len(v or "")
            for v in (
                embed.get("title"),
                embed.get("description"),
                embed.get("footer", {}).get("text"),
                embed.get("author", {}).get("name"),
            )
        )
    if total > MAX_EMBED_TOTAL:
        _err(errors, "embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")


def _validate_components(errors: dict[str, Any], components: list[dict[str, Any]], flags: int) -> None:
    if flags & FLAG_COMPONENTS_V2:
        return  # layout components have their own rules; only the leaf checks below would apply
    if len(components) > MAX_ACTION_ROWS:
        _err(errors, "components", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ACTION_ROWS} or fewer in length.")
    for i, row in enumerate(components):
        items = row.get("components", [])
        if row.get("type") != 1:
            _err(
                errors,
                f"components.{i}.type",
                "UNION_TYPE_CHOICES",
                "Top-level components must be action rows",
            )
        if len(items) > MAX_ROW_ITEMS:
            _err(
                errors, f"components.{i}.components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."
            )
        custom_ids = set()
        for j, item in enumerate(items):
            p = f"components.{i}.components.{j}"
            _check_len(errors, f"{p}.label", item.get("label"), MAX_BUTTON_LABEL)
            _check_len(errors, f"{p}.custom_id", item.get("custom_id"), MAX_CUSTOM_ID)
            if item.get("type") == 3 and len(item.get("options", [])) > MAX_SELECT_OPTIONS:
                _err(errors, f"{p}.options", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            cid = item.get("custom_id")
            if cid is not None and cid in custom_ids:
                _err(
                    errors,
                    f"{p}.custom_id",
                    "COMPONENT_CUSTOM_ID_DUPLICATED",
                    "Component custom id is duplicated",
                )
            custom_ids.add(cid)


def _validate_command(payload: dict[str, Any], index: int, errors: dict[str, Any]) -> None:
    p = str(index)
    name = payload.get("name", "")
    ctype = payload.get("type", 1)
    if ctype == 1 and (not COMMAND_NAME_RE.match(name) or name != name.lower()):
        _err(errors, f"{p}.name", "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}")
    if ctype == 1 and not 1 <= len(payload.get("description", "")) <= 100:
        _err(errors, f"{p}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    _validate_options(payload.get("options", []), f"{p}.options", errors)


def _validate_options(options: list[dict[str, Any]], path: str, errors: dict[str, Any]) -> None:
    if len(options) > 25:
        _err(errors, path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    seen_optional = False
    for i, option in enumerate(options):
        p = f"{path}.{i}"
        name = option.get("name", "")
        if not COMMAND_NAME_RE.match(name) or name != name.lower():
            _err(errors, f"{p}.name", "APPLICATION_COMMAND_INVALID_NAME", f"Option name is invalid: {name!r}")
        if not 1 <= len(option.get("description", "")) <= 100:
            _err(errors, f"{p}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if option.get("type") in (1, 2):
            _validate_options(option.get("options", []), f"{p}.options", errors)
            continue
        if option.get("required"):
            if seen_optional:
                _err(
                    errors,
                    p,
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must come first",
                )
        else:
            seen_optional = True
        if len(option.get("choices", [])) > MAX_CHOICES:
            _err(errors, f"{p}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
