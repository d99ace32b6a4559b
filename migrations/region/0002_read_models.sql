-- Read models of one region, written by the projection together with its tracking position.

-- Every posting of every money-moving event (the general journal).
CREATE TABLE journal (
    notification_id bigint   NOT NULL,
    leg             smallint NOT NULL,
    posted_on       date     NOT NULL,
    kind            text     NOT NULL,
    ref             text     NOT NULL,
    fund            text     NOT NULL,
    account         text     NOT NULL,
    party           text     NOT NULL,
    amount          bigint   NOT NULL,
    PRIMARY KEY (notification_id, leg)
);
CREATE INDEX journal_by_account ON journal (fund, account, posted_on);
CREATE INDEX journal_by_party ON journal (party, fund, account);
CREATE INDEX journal_by_ref ON journal (ref);

-- The current version of every settlement.
CREATE TABLE settlements (
    setl_id         text    PRIMARY KEY,
    version         integer NOT NULL,
    status          text    NOT NULL,
    psn_no          text    NOT NULL,
    year            integer NOT NULL,
    setl_time       date    NOT NULL,
    hospital        text    NOT NULL,
    insutype        text    NOT NULL,
    assist_category text    NOT NULL,
    medfee_sumamt   bigint  NOT NULL,
    hifp_pay        bigint  NOT NULL,
    hifmi_pay       bigint  NOT NULL,
    maf_pay         bigint  NOT NULL,
    hmb_pay         bigint  NOT NULL,
    charity_pay     bigint  NOT NULL,
    psn_part_amt    bigint  NOT NULL,
    acct_pay        bigint  NOT NULL,
    acct_mulaid_pay bigint  NOT NULL,
    psn_cash_pay    bigint  NOT NULL,
    lookback_maf    bigint  NOT NULL DEFAULT 0
);
CREATE INDEX settlements_by_member ON settlements (psn_no, year);
CREATE INDEX settlements_by_hospital ON settlements (hospital, setl_time);

-- Member-year accumulators (the same figures MemberYear replays to).
CREATE TABLE member_usage (
    psn_no                           text    NOT NULL,
    year                             integer NOT NULL,
    basic_paid                       bigint  NOT NULL DEFAULT 0,
    basic_outpatient_paid            bigint  NOT NULL DEFAULT 0,
    serious_illness_base             bigint  NOT NULL DEFAULT 0,
    serious_illness_paid             bigint  NOT NULL DEFAULT 0,
    assistance_paid                  bigint  NOT NULL DEFAULT 0,
    assistance_outpatient_paid       bigint  NOT NULL DEFAULT 0,
    assistance_deductible_used       bigint  NOT NULL DEFAULT 0,
    supplementary_paid               bigint  NOT NULL DEFAULT 0,
    supplementary_deductible_used    bigint  NOT NULL DEFAULT 0,
    supplementary_oor_deductible_used bigint NOT NULL DEFAULT 0,
    out_of_pocket                    bigint  NOT NULL DEFAULT 0,
    charity_paid                     bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (psn_no, year)
);

GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON journal, settlements, member_usage TO yibao_app;
GRANT SELECT ON journal, settlements, member_usage TO yibao_auditor;
