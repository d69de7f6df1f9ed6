"""The `webmodels` command line: one module per group of subcommands."""
