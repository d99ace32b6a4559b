-- Every run of `yibao verify`, one row per region checked: when, who ran it, what it found and
-- how far it checked. `verify` itself only reads; this is where its answer is kept, so that the
-- console can show the latest and say when it is stale. Rows are never changed.

CREATE TABLE yibao.verify_runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    ran_by        text NOT NULL,
    ran_by_known  boolean NOT NULL,  -- ran_by passed commands/identity.py (else: the name as given)
    region        text NOT NULL,     -- a region code, or 'transfers' / 'checkpoint…' for those checks
    ok            boolean NOT NULL,
    problems      integer NOT NULL CHECK (problems >= 0),
    first_problem text,
    position      bigint NOT NULL,   -- the last position of the region's log that was checked
    checked       jsonb NOT NULL     -- what verify counted: events, postings, settlements, …
);
CREATE INDEX verify_runs_latest ON yibao.verify_runs (region, id);

CREATE TRIGGER verify_runs_immutable BEFORE UPDATE OR DELETE ON yibao.verify_runs
    FOR EACH ROW EXECUTE FUNCTION yibao.refuse_change();
CREATE TRIGGER verify_runs_no_truncate BEFORE TRUNCATE ON yibao.verify_runs
    FOR EACH STATEMENT EXECUTE FUNCTION yibao.refuse_change();

GRANT SELECT, INSERT ON yibao.verify_runs TO yibao_app, yibao_auditor;
