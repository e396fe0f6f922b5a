"""``python -m pgparity`` is the ``pgparity`` command."""

from pgparity.cli import main

raise SystemExit(main())
