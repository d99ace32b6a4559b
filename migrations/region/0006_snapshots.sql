-- Snapshots of long aggregates (member-years): the state at a version, recorded in the same
-- transaction as the event that reached it, so that a load replays only the events after it.
-- Derived data: `yibao verify` rebuilds every snapshot from the events and names any that differ.
CREATE TABLE snapshots (
    originator_id      uuid        NOT NULL,
    originator_version bigint      NOT NULL,
    topic              text        NOT NULL,
    state              bytea       NOT NULL,
    recorded_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (originator_id, originator_version)
);

CREATE TRIGGER snapshots_are_immutable
    BEFORE UPDATE OR DELETE ON snapshots
    FOR EACH ROW EXECUTE FUNCTION yibao.refuse_change();
CREATE TRIGGER snapshots_are_never_truncated
    BEFORE TRUNCATE ON snapshots
    FOR EACH STATEMENT EXECUTE FUNCTION yibao.refuse_change();

GRANT SELECT, INSERT ON snapshots TO yibao_app;
GRANT SELECT ON snapshots TO yibao_auditor;
