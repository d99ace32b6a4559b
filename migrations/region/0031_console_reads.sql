-- The console's overview counts the approval requests still pending, and its hospitals page lists
-- the reconciliations recorded: both are read from these events directly (a handful among
-- hundreds of thousands). Without this index each read would scan the whole log.
CREATE INDEX events_console_reads ON events (topic, notification_id)
    WHERE topic IN ('ApprovalRequest.Requested', 'ApprovalRequest.Approved', 'ApprovalRequest.Rejected',
                    'Reconciliation.Recorded', 'Reconciliation.Rechecked');
