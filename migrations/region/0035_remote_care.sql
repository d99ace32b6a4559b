-- 异地就医 and the clearing between regions (清分): the relay looks for these kinds of event in
-- each region's log (app.remote_relay); without this index every look would read the whole log.
CREATE INDEX events_remote_care_steps ON events (topic, notification_id)
    WHERE topic IN ('RemoteCare.Owed', 'RemoteCare.Withdrawn', 'RegionClearings.Cleared');
