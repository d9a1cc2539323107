"""``python -m hpcsoa``: the command line."""

from .cli import main

raise SystemExit(main())
