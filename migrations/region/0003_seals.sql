-- Seals: the head of the hash chain, recorded with the time by every writing transaction.
-- A seal names the last event of its transaction and that event's chain hash, so that deleting
-- the newest events (which leaves a shorter chain that is still internally valid) is detected.
-- Like events, seals are never changed.

CREATE TABLE seals (
    notification_id bigint      PRIMARY KEY,
    chain_hash      bytea       NOT NULL,
    sealed_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TRIGGER seals_are_immutable
    BEFORE UPDATE OR DELETE ON seals
    FOR EACH ROW EXECUTE FUNCTION yibao.refuse_change();
CREATE TRIGGER seals_are_never_truncated
    BEFORE TRUNCATE ON seals
    FOR EACH STATEMENT EXECUTE FUNCTION yibao.refuse_change();

GRANT SELECT, INSERT ON seals TO yibao_app;
GRANT SELECT ON seals TO yibao_auditor;
