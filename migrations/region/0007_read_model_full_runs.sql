-- A full run of the read model (`rebuild`: from the first event) sums member usage in memory and
-- writes it with its last page, and writes its pages without the two secondary indexes keyed by
-- person, building them once after its last page: a sort instead of an insert at a random place
-- of a b-tree larger than shared_buffers for every row. The other secondary indexes stay: their
-- rows arrive in log order (a fund/account or hospital, then a date; a settlement id), so their
-- inserts land on a few right-hand pages, cheaper while the run reads than a sort after it.
-- Measured on a log of 5,303,596 events (2 cores, medians): dropping none 68,781 events/s, all
-- five 61,304 (building them after the last page took 24 s), these two 75,881.
-- Dropping an index needs the owner of its table (the migrations' role), not yibao_app: these two
-- functions run as that owner and do only this, on this region's schema (the migration's
-- search_path, captured FROM CURRENT).
--
-- While such a run is in progress, `read_model_full_runs` holds a row for it: the rows of the
-- pages committed so far lack their member usage. A catch-up that finds the row without the run
-- being alive (it holds a session advisory lock) starts the read model again from the first event.

CREATE TABLE read_model_full_runs (
    application_name text        PRIMARY KEY,
    started_at       timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, DELETE ON read_model_full_runs TO yibao_app;
GRANT SELECT ON read_model_full_runs TO yibao_auditor;

-- The secondary indexes a full run drops; `ensure_read_model_indexes` builds them as 0002 did.
CREATE FUNCTION read_model_dropped_indexes() RETURNS TABLE (index_name text, table_name text, columns text)
LANGUAGE sql IMMUTABLE AS $$
    VALUES ('journal_by_party', 'journal', '(party, fund, account)'),
           ('settlements_by_member', 'settlements', '(psn_no, year)')
$$;

CREATE FUNCTION drop_read_model_indexes() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    s text := current_schema();
    i record;
    dropped integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(s || '.read_model_indexes'));
    FOR i IN SELECT * FROM read_model_dropped_indexes() LOOP
        IF to_regclass(format('%I.%I', s, i.index_name)) IS NOT NULL THEN
            EXECUTE format('DROP INDEX %I.%I', s, i.index_name);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END
$$;

CREATE FUNCTION ensure_read_model_indexes() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET maintenance_work_mem = '256MB' AS $$
DECLARE
    s text := current_schema();
    i record;
    built integer := 0;
BEGIN
    -- Two runners ending at once: the second waits for the first's indexes, then finds them.
    PERFORM pg_advisory_xact_lock(hashtext(s || '.read_model_indexes'));
    FOR i IN SELECT * FROM read_model_dropped_indexes() LOOP
        IF to_regclass(format('%I.%I', s, i.index_name)) IS NULL THEN
            EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I.%I %s', i.index_name, s, i.table_name, i.columns);
            built := built + 1;
        END IF;
    END LOOP;
    RETURN built;
END
$$;

REVOKE ALL ON FUNCTION drop_read_model_indexes(), ensure_read_model_indexes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION drop_read_model_indexes(), ensure_read_model_indexes() TO yibao_app;
