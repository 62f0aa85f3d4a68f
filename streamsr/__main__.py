"""`python -m streamsr` = the `streamsr` command."""

from .cli import main

main()
