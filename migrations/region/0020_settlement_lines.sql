-- Settlement lines (结算明细) as the national interface reconciles them (3201, 3202; issue 19):
-- one row per settlement version (refd_setl_flag '0', dated at its setl_time) and one per
-- reversal (refd_setl_flag '1', dated at the reversal's business date, amounts negated), with
-- the position of the event that made it. Written by the read model with its other tables.
CREATE TABLE settlement_lines (
    notification_id bigint  PRIMARY KEY,
    setl_id         text    NOT NULL,
    version         integer NOT NULL,
    refd_setl_flag  text    NOT NULL CHECK (refd_setl_flag IN ('0', '1')),
    mdtrt_id        text,
    psn_no          text    NOT NULL,
    hospital        text    NOT NULL,
    insutype        text    NOT NULL,
    clr_type        text    NOT NULL,
    line_date       date    NOT NULL,
    medfee_sumamt   bigint  NOT NULL,
    fund_pay_sumamt bigint  NOT NULL,
    acct_pay        bigint  NOT NULL  -- own account and family mutual aid (acct_pay + acct_mulaid_pay)
);
CREATE INDEX settlement_lines_by_hospital ON settlement_lines (hospital, line_date);
CREATE INDEX settlement_lines_by_setl_id ON settlement_lines (setl_id, version, refd_setl_flag);
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON settlement_lines TO yibao_app;
GRANT SELECT ON settlement_lines TO yibao_auditor;

-- The new table has no rows for the events already projected: the read model is emptied and its
-- position forgotten, so the next catch-up builds every table again from the first event. (The
-- read model tracks itself as the application, 'yibao'; the transfer relay's rows stay.)
TRUNCATE journal, settlements, member_usage, transfers;
DELETE FROM notification_tracking WHERE application_name = 'yibao';
