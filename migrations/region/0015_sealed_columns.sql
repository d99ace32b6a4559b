-- Every stored column of every event is covered by a hash `yibao verify` recomputes.
--
-- From this migration on, the recorder writes each event's time of recording itself and hashes it
-- with the event's position, its other columns and whether its transaction's seal names it
-- (store/chain.py). Events already written keep their rows: history is never rewritten. Their
-- old chain hash covers aggregate id, version, topic and payload, not the position, the time of
-- recording or the seals; so this migration seals, beside them, a digest of all their stored
-- columns (`event_digests`, one row per event, the same bytes as store/chain.py legacy_digest),
-- and one digest over those digests in position order (`event_digests_seal`, which signed
-- checkpoints carry). Neither table is ever written again.
--
-- Taken first: the region's write lock (store/recorder.py advisory_key), so that no event commits
-- between the digests and this migration's commit; the first event after it gets the new hash.
SELECT pg_advisory_xact_lock(
    (('x' || substr(encode(sha256(convert_to(current_schema() || '.events', 'UTF8')), 'hex'), 1, 16))::bit(64)
     >> 1)::bigint
);

CREATE TABLE event_digests (
    notification_id bigint PRIMARY KEY,
    digest          bytea  NOT NULL
);

INSERT INTO event_digests (notification_id, digest)
SELECT e.notification_id,
       sha256(int8send(e.notification_id)
              || int8send((extract(epoch FROM e.recorded_at) * 1000000)::bigint)
              || CASE WHEN s.notification_id IS NULL THEN '\x00'::bytea ELSE '\x01'::bytea END
              || e.chain_hash
              || uuid_send(e.originator_id)
              || int8send(e.originator_version)
              || convert_to(e.topic, 'UTF8') || '\x00'::bytea
              || e.state)
FROM events AS e LEFT JOIN seals AS s ON s.notification_id = e.notification_id;

-- Digests of blocks of 65,536 positions, then of the blocks in order: no value of more than a
-- few megabytes, however long the log.
CREATE TABLE event_digests_seal (
    through_position bigint      NOT NULL,  -- the last event written before this migration (0: none)
    events           bigint      NOT NULL,
    digest           bytea       NOT NULL,
    sealed_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);

INSERT INTO event_digests_seal (through_position, events, digest)
SELECT coalesce(max(last), 0), coalesce(sum(n), 0), sha256(coalesce(string_agg(d, ''::bytea ORDER BY block), ''::bytea))
FROM (SELECT notification_id >> 16 AS block, max(notification_id) AS last, count(*) AS n,
             sha256(string_agg(digest, ''::bytea ORDER BY notification_id)) AS d
      FROM event_digests GROUP BY 1) AS blocks;

CREATE TRIGGER event_digests_are_immutable
    BEFORE INSERT OR UPDATE OR DELETE ON event_digests
    FOR EACH ROW EXECUTE FUNCTION yibao.refuse_change();
CREATE TRIGGER event_digests_are_never_truncated
    BEFORE TRUNCATE ON event_digests
    FOR EACH STATEMENT EXECUTE FUNCTION yibao.refuse_change();
CREATE TRIGGER event_digests_seal_is_immutable
    BEFORE INSERT OR UPDATE OR DELETE ON event_digests_seal
    FOR EACH ROW EXECUTE FUNCTION yibao.refuse_change();
CREATE TRIGGER event_digests_seal_is_never_truncated
    BEFORE TRUNCATE ON event_digests_seal
    FOR EACH STATEMENT EXECUTE FUNCTION yibao.refuse_change();

GRANT SELECT ON event_digests, event_digests_seal TO yibao_app, yibao_auditor;
