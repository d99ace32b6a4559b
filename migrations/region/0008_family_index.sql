-- `claims settle --workers N` splits a file by account owner, so it needs every member whose
-- account is another's (家庭共济) before it starts. Only these two kinds of event say so; without
-- this index finding them would read the whole log.
CREATE INDEX events_family_changes ON events (topic, notification_id)
    WHERE topic IN ('Member.FamilyBound', 'Member.FamilyUnbound');
