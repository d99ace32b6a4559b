"""The yibao Click CLI: parse, call one application method, print."""
