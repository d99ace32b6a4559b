-- The indexes a full run drops (0007, 0009) are kept as rows of a table; the function that lists
-- them now reads that table instead of returning constants.
--
-- Why: `ensure_read_model_indexes` and `drop_read_model_indexes` loop over that list, and
-- PostgreSQL keeps the plan of such a loop for the session. The old function was an IMMUTABLE
-- SQL function, so its VALUES were copied into that plan. Take a pooled session that had called
-- `ensure` before, and let it wait for the index lock while a migration changes the list. When it
-- went on, it used the list from its plan, not the committed one. The migration's new definition
-- was lost, and the old one was built instead (0009's journal_by_party on 0007's three columns;
-- reproduced by tests/integration/test_dropped_index_rows.py). A table is read again by every
-- statement, so a call that waited builds what the migration committed.
--
-- To change the list from here on: take the lock below, then change the rows.

SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.read_model_indexes'));

CREATE TABLE read_model_dropped_index_rows (
    index_name text PRIMARY KEY,
    table_name text NOT NULL,
    columns    text NOT NULL  -- the key, as written after the table's name in CREATE INDEX
);
INSERT INTO read_model_dropped_index_rows (index_name, table_name, columns)
SELECT index_name, table_name, columns FROM read_model_dropped_indexes();
GRANT SELECT ON read_model_dropped_index_rows TO yibao_app, yibao_auditor;

-- Same name and columns, so the two functions of 0007 are unchanged. Not inlinable (SET), and
-- STABLE: it reads the rows with the snapshot of the statement that calls it.
CREATE OR REPLACE FUNCTION read_model_dropped_indexes() RETURNS TABLE (index_name text, table_name text, columns text)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT index_name, table_name, columns FROM read_model_dropped_index_rows ORDER BY index_name
$$;
