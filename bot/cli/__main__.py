"""`python -m bot.cli`: the `syncbot` command."""

from bot.cli import main

main()
