"""How a user fixes a missing or broken model, said two ways: as commands for the CLI and as
menu paths for the desktop app (whose users have no terminal). Messages are written once with
``$download``, ``$local``, ``$again``, ``$verify``, ``$login`` where the fix goes."""

from __future__ import annotations

from string import Template

from ovpaint.core.errors import ModelUnavailable

APP_MENU = "Models → Get Models…"


def _cli(model_id: str) -> dict[str, str]:
    return {
        "download": f"Download it with `ovpaint models download {model_id}` or {APP_MENU} in "
        "the app",
        "local": f"use a copy you already have with `ovpaint models import {model_id} PATH`",
        "again": "Run the same command again",
        "verify": f"check it with `ovpaint models verify {model_id}`",
        "login": "a Hugging Face login (`hf auth login`)",
        "tiny": " To try the program without any weights, use `--models tiny`.",
    }


def _app(model_id: str) -> dict[str, str]:
    return {
        "download": f"Download it in {APP_MENU}",
        "local": f"use a copy you already have ({APP_MENU} → Use Files on Disk)",
        "again": "Press Download again",
        "verify": f"download it again in {APP_MENU}",
        "login": "a Hugging Face token (the HF_TOKEN environment variable)",
        "tiny": "",
    }


def both(text: str, model_id: str = "") -> tuple[str, str]:
    """(CLI message, app message) of ``text`` with its fixes filled in."""
    template = Template(text)
    return template.safe_substitute(_cli(model_id)), template.safe_substitute(_app(model_id))


def unavailable(text: str, model_id: str = "") -> ModelUnavailable:
    """A ModelUnavailable whose message names the fix each front-end offers."""
    cli, app = both(text, model_id)
    return ModelUnavailable(cli, app_message=app)
