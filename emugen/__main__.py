"""`python -m emugen` runs the CLI."""

from emugen.cli import main

main()
