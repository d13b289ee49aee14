"""MkDocs hook: replaces ``<!-- cli-reference -->`` in a page with the reference of every
``tideflow`` command, generated from the Typer app itself (so it cannot drift from the CLI)."""

from __future__ import annotations

from typing import Any

MARKER = "<!-- cli-reference -->"


def _command_tree() -> Any:
    import typer.main

    from tideflow.cli.main import app

    return typer.main.get_command(app)


def _options(command: Any, ctx: Any) -> list[str]:
    rows = []
    for param in command.get_params(ctx):
        if getattr(param, "name", None) == "help":
            continue
        record = param.get_help_record(ctx)
        if record is None:  # arguments and hidden options
            if getattr(param, "param_type_name", "") == "argument":
                needed = " (required)" if param.required else ""
                rows.append(f"| `{param.human_readable_name}` | argument{needed} |")
            continue
        names, text = record
        text = " ".join(text.split()).replace("|", "\\|")
        rows.append(f"| `{names}` | {text} |")
    if not rows:
        return []
    return ["| Option | Description |", "| --- | --- |", *rows, ""]


def _render(command: Any, path: list[str], parent: Any, out: list[str]) -> None:
    # Typer may vendor its own Click: use the command's own context class, not the click package's.
    ctx = command.context_class(command, info_name=path[-1], parent=parent)
    depth = min(len(path) + 1, 6)
    out.append(f"{'#' * depth} `{' '.join(path)}`\n")
    text = (command.help or "").strip()
    if text:
        out.append(" ".join(text.split("\n\n")[0].split()) + "\n")
    usage = " ".join(command.collect_usage_pieces(ctx))
    out.append(f"```text\n{ctx.command_path} {usage}\n```\n")
    out.extend(_options(command, ctx))
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not getattr(sub, "hidden", False):
                _render(sub, [*path, name], ctx, out)


def cli_reference() -> str:
    """The whole CLI reference as Markdown."""
    out: list[str] = []
    _render(_command_tree(), ["tideflow"], None, out)
    return "\n".join(out)


def on_page_markdown(markdown: str, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, cli_reference())
