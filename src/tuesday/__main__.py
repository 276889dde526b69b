"""``python -m tuesday``: the command line."""

from tuesday.cli import main

main()
