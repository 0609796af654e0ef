"""Allows ``python -m bridge`` as a synonym for the ``bridge`` command."""

from bridge.cli import main

raise SystemExit(main())
