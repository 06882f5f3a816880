"""Entry point placeholder; replaced as commands land."""

import click


@click.group()
def main() -> None:
    """Build, publish, sign and verify LinuxKit packages."""
