-- Two changes to the read model's indexes, for a full run (`rebuild`, 0007) above all.
-- Measured on the 5,303,596-event log of `bench.replay --events 5000000` (2 cores).
--
-- 1. A full run also drops `journal_by_ref` for its pages and builds it after the last one.
--    0007 kept it, expecting its inserts (settlement ids, in log order) to be cheap; measured,
--    they are not: copying the log's 5,076,996 journal rows took 16.5 s with the primary key
--    and this index, 8.7 s with the primary key alone, and building the index after them takes
--    2.6 s. Dropping `journal_by_account` too was slower (64,100-73,100 events/s, against
--    78,700-81,400 with this one): its inserts cost about what building it after the last page
--    does, and that build runs while nothing else can.
-- 2. `journal_by_party` keys on the party alone, not (party, fund, account): built after a full
--    run's last page in 3.5 s, not 9.5 s. Its queries (a hospital's statement and what is owed
--    to it: party = a hospital, account one of two) now filter the account on the table's rows,
--    not in the index: a hospital's journal rows are almost all of those two accounts (payables
--    and receivables; fines are the rest), so they read about as many rows as before.
--
-- Taken first, in a statement of its own (the DO block below then sees its catalog after it):
-- the lock with which `drop_read_model_indexes` and `ensure_read_model_indexes` (0007) change
-- these indexes, so that neither builds or drops one between this migration's look and its commit.
SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.read_model_indexes'));

CREATE OR REPLACE FUNCTION read_model_dropped_indexes() RETURNS TABLE (index_name text, table_name text, columns text)
LANGUAGE sql IMMUTABLE AS $$
    VALUES ('journal_by_party', 'journal', '(party)'),
           ('journal_by_ref', 'journal', '(ref)'),
           ('settlements_by_member', 'settlements', '(psn_no, year)')
$$;

-- Replaced only where it exists: a full run that dropped it builds the new one after its last
-- page. Built under another name before the old one goes, so the journal is locked against
-- reads only for the drop and the rename, not for the build.
SET LOCAL maintenance_work_mem = '256MB';
DO $$
BEGIN
    IF to_regclass(format('%I.journal_by_party', current_schema())) IS NOT NULL THEN
        CREATE INDEX journal_by_party_0009 ON journal (party);
        DROP INDEX journal_by_party;
        ALTER INDEX journal_by_party_0009 RENAME TO journal_by_party;
    END IF;
END
$$;
