-- The registry of pooling regions and the database roles.
-- yibao_app: the application; may insert and read events and write its projections.
-- yibao_auditor: may only read.
-- Migrations run as the owner (the role in DATABASE_URL, or the embedded server's superuser).

CREATE TABLE yibao.regions (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]{6}$'),
    schema_name text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'yibao_app') THEN
        CREATE ROLE yibao_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'yibao_auditor') THEN
        CREATE ROLE yibao_auditor NOLOGIN;
    END IF;
    -- The owner connects and then SET ROLE yibao_app, so it must be a member.
    IF NOT pg_has_role(current_user, 'yibao_app', 'MEMBER') THEN
        EXECUTE format('GRANT yibao_app TO %I', current_user);
    END IF;
    IF NOT pg_has_role(current_user, 'yibao_auditor', 'MEMBER') THEN
        EXECUTE format('GRANT yibao_auditor TO %I', current_user);
    END IF;
END
$$;

GRANT USAGE ON SCHEMA yibao TO yibao_app, yibao_auditor;
GRANT SELECT ON yibao.regions TO yibao_app, yibao_auditor;
GRANT SELECT ON yibao.schema_migrations TO yibao_app, yibao_auditor;

-- Facts are never changed: UPDATE, DELETE and TRUNCATE on an event table raise this error.
CREATE FUNCTION yibao.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'correct a fact by recording a new event (reverse, correct), never by editing rows';
END
$$;
