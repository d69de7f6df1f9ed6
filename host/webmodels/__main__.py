"""`python -m webmodels` is the `webmodels` command."""

from webmodels.cli.main import main

raise SystemExit(main())
