"""The bulk pipeline: streaming record files in batches, the save of one batch behind the
computing of the next, worker processes split by account owner, grouped settling. Built on the
service layer (`app`); never imported by `core`, `app`, `store` or `projections`."""
