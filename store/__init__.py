"""PostgreSQL adapters: where the server is (embedded or DATABASE_URL), the migrations runner,
the region recorder (COPY inserts, hash chain, seals) and per-region applications. Must not
import click or anything under commands/.
"""
