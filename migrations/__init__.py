"""Numbered SQL migrations, applied in order by store.migrate."""
