"""Pure domain of yibao: money, policies, tier rules, aggregates and their events.

Must not import psycopg, click or anything under store/, projections/ or commands/.
"""
