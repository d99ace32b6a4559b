-- The recorder reserves a block of notification ids (setval) and writes the events with COPY,
-- both under the region's write lock: the application role may advance the id sequence.
GRANT UPDATE ON SEQUENCE events_notification_id_seq TO yibao_app;
