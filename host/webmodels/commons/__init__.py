"""Common models: the signed commons list (`lists`), the host's last good list and
the probe budget kept in the index (`keeper`), and the visibility gate the methods
ask (`gate`). docs/design.md#privacy."""
