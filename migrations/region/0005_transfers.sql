-- Relationship transfers seen from one region (read model): its members' transfers out, with
-- their status, and the arrivals of members transferred in.
CREATE TABLE transfers (
    transfer_id        text    NOT NULL,
    direction          text    NOT NULL CHECK (direction IN ('out', 'in')),
    psn_no             text    NOT NULL,
    from_region        text    NOT NULL,
    to_region          text    NOT NULL,
    transfer_date      date    NOT NULL,
    balance            bigint  NOT NULL,
    contribution_years integer NOT NULL,
    status             text    NOT NULL,
    requested_on       date    NOT NULL,
    position           bigint  NOT NULL,  -- the last event that changed the row
    PRIMARY KEY (transfer_id, direction, from_region)  -- two regions may use one transfer id
);
CREATE INDEX transfers_by_status ON transfers (status);

-- The relay looks for these two kinds of event in each region's log; without this index every
-- look would read the whole log.
CREATE INDEX events_transfer_steps ON events (topic, notification_id)
    WHERE topic IN ('Transfer.Released', 'TransferIn.Received');

GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON transfers TO yibao_app;
GRANT SELECT ON transfers TO yibao_auditor;
