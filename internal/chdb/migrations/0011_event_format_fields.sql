-- What the Segment and Plausible formats carry beyond our own event format,
-- kept so that nothing a client sent is lost (docs/ingest-formats.md):
-- the group of a Segment group call (or a call's context.groupId), the
-- previous id of an alias call, the message's context as JSON text (without
-- ip and userAgent, which only feed enrichment), and Plausible's
-- "interactive": false (an event that is no part of a visit, migration 0012).
-- Rows written before are interactive, with no group, previous id or context.
ALTER TABLE events ADD COLUMN group_id String;
ALTER TABLE events ADD COLUMN previous_id String;
ALTER TABLE events ADD COLUMN context String;
ALTER TABLE events ADD COLUMN non_interactive UInt8;
