-- Who looked at whose data, and when (the console's access log). Personal medical and payment
-- data is protected by law: every view of a member's data is a row here, which nobody changes.

CREATE TABLE yibao.access_log (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    user_name text NOT NULL REFERENCES yibao.users (name),
    what      text NOT NULL,
    subject   text NOT NULL
);

CREATE TRIGGER access_log_immutable BEFORE UPDATE OR DELETE ON yibao.access_log
    FOR EACH ROW EXECUTE FUNCTION yibao.refuse_change();
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON yibao.access_log
    FOR EACH STATEMENT EXECUTE FUNCTION yibao.refuse_change();

GRANT SELECT, INSERT ON yibao.access_log TO yibao_app;
GRANT SELECT ON yibao.access_log TO yibao_auditor;
