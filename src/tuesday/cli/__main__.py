"""``python -m tuesday.cli``: the command line."""

from tuesday.cli import main

main()
