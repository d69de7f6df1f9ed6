"""Common models: the signed commons lists (`lists`), which keys may sign them
(`trust`), each key's last good list and the probe budget kept in the index
(`keeper`), what the user is shown about them (`status`), and the visibility gate the
methods ask (`gate`). docs/commons.md has the rules."""
