"""Read models built from each region's event log: the journal, settlements and member usage
(one tracked projection), and what is computed from them: balance sheet, hospital statement,
coverage, audit trace and verification. Must not import click or anything under commands/.
"""
