"""``python -m mmrag.cli``: the ``mmrag`` command."""

from mmrag.cli import main

main()
