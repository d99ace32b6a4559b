"""The service layer: the region application (load aggregates, call the domain, save), the
transfer cases and their relay between regions, the unit of work. Imports `core` only, never
`store`, `projections`, `bulk` or `commands`."""
