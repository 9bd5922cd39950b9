"""Write docs/cli.md from the command-line parser (run by `make docs` before mkdocs)."""

import argparse
from pathlib import Path

from vmoer_ppl.cli import build_parser


def main() -> None:
    """Render every subcommand's --help into docs/cli.md."""
    parser = build_parser()
    parts = ["# Command line", "", "Generated from `vmoer_ppl.cli.build_parser()`.", ""]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        parts += [f"## `vmoer {name}`", "", "```text", command.format_help().rstrip(), "```", ""]
    Path(__file__).with_name("cli.md").write_text("\n".join(parts))


if __name__ == "__main__":
    main()
