-- A pooling region's event store. Runs with search_path set to the region's own schema.
-- Column layout is the eventsourcing library's stored-events table, plus the time of recording
-- and a hash chain (each row's hash covers its content and the previous row's hash).

CREATE TABLE events (
    originator_id      uuid        NOT NULL,
    originator_version bigint      NOT NULL,
    topic              text        NOT NULL,
    state              bytea       NOT NULL,
    notification_id    bigserial   NOT NULL,
    recorded_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    chain_hash         bytea       NOT NULL,
    PRIMARY KEY (originator_id, originator_version)
);
CREATE UNIQUE INDEX events_notification_id_idx ON events (notification_id);

CREATE TRIGGER events_are_immutable
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION yibao.refuse_change();
CREATE TRIGGER events_are_never_truncated
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION yibao.refuse_change();

-- Positions of the processes that follow this region's log (projections), one row each.
CREATE TABLE notification_tracking (
    application_name text PRIMARY KEY,
    notification_id  bigint NOT NULL
);

DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO yibao_app, yibao_auditor', current_schema());
END
$$;
GRANT SELECT, INSERT ON events TO yibao_app;
GRANT USAGE ON SEQUENCE events_notification_id_seq TO yibao_app;
GRANT SELECT ON events TO yibao_auditor;
GRANT SELECT, INSERT, UPDATE, DELETE ON notification_tracking TO yibao_app;
GRANT SELECT ON notification_tracking TO yibao_auditor;
