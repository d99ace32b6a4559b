-- The people who operate, approve, reconcile and audit (finance controls and the console).
-- A user is never deleted: disabling keeps every name that ever signed an action resolvable.
-- Each change is also a row of yibao.user_changes, which is never changed itself.

CREATE TABLE yibao.users (
    name          text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$'),
    role          text NOT NULL CHECK (role IN ('operator', 'approver', 'finance', 'auditor')),
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);

CREATE TABLE yibao.user_changes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL REFERENCES yibao.users (name),
    change     text NOT NULL CHECK (change IN ('added', 'disabled', 'password_set')),
    role       text NOT NULL,
    changed_by text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER user_changes_immutable BEFORE UPDATE OR DELETE ON yibao.user_changes
    FOR EACH ROW EXECUTE FUNCTION yibao.refuse_change();
CREATE TRIGGER user_changes_no_truncate BEFORE TRUNCATE ON yibao.user_changes
    FOR EACH STATEMENT EXECUTE FUNCTION yibao.refuse_change();

GRANT SELECT, INSERT ON yibao.users, yibao.user_changes TO yibao_app;
GRANT UPDATE (disabled_at, password_hash) ON yibao.users TO yibao_app;
GRANT SELECT ON yibao.users, yibao.user_changes TO yibao_auditor;
