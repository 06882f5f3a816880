"""`lkpkg completion SHELL`: the shell's completion script, from click's own machinery."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(context: click.Context, shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    Examples:
      eval "$(lkpkg completion bash)"                  # in ~/.bashrc
      lkpkg completion fish > ~/.config/fish/completions/lkpkg.fish
    """
    root = context.find_root()
    cls = get_completion_class(shell)
    if cls is None:  # click knows every shell offered above; kept for its type
        raise click.UsageError(f"no completion for {shell}")
    script = cls(root.command, {}, "lkpkg", "_LKPKG_COMPLETE").source()
    click.echo(script)
