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
--    to it, by party and account) read nearly every row of the party either way: a hospital's
--    rows are its payables and receivables, a member's a few dozen.
CREATE OR REPLACE FUNCTION read_model_dropped_indexes() RETURNS TABLE (index_name text, table_name text, columns text)
LANGUAGE sql IMMUTABLE AS $$
    VALUES ('journal_by_party', 'journal', '(party)'),
           ('journal_by_ref', 'journal', '(ref)'),
           ('settlements_by_member', 'settlements', '(psn_no, year)')
$$;

-- Replaced only where it exists: a full run that dropped it builds the new one after its last page.
DO $$
BEGIN
    IF to_regclass('journal_by_party') IS NOT NULL THEN
        DROP INDEX journal_by_party;
        CREATE INDEX journal_by_party ON journal (party);
    END IF;
END
$$;
