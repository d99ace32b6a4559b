"""The `yibao` Click CLI: each command parses its input, calls the application and prints.
Business rules live in core/; SQL lives in store/ and projections/, never here.
"""
