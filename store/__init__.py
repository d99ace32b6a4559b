"""PostgreSQL adapters: server location, migrations, recorder, codec, per-region applications."""
