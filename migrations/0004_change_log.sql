-- The change log (read as GET /api/v1/events, and sent as webhooks): the audit row of an event that changed
-- the directory is also its change record, written in the same batch as the change, so there is never a
-- change without its record nor a record without its change, and it costs no row of its own. Rows of events
-- that changed nothing (duplicates answered elsewhere, stale or refused events) leave these columns NULL.
-- No index: the feed walks the primary key from a cursor.
ALTER TABLE deliveries ADD COLUMN change_type TEXT;      -- 'user.created', 'organization.moved', … (docs/read-api.md)
ALTER TABLE deliveries ADD COLUMN changed TEXT;          -- JSON array of the API names of the attributes that changed
ALTER TABLE deliveries ADD COLUMN entity_version INTEGER; -- the entity's version after the change
ALTER TABLE deliveries ADD COLUMN event_at INTEGER;      -- OneAccess's event time (Unix ms)
ALTER TABLE deliveries ADD COLUMN entity TEXT;           -- the entity as the read API shows it after the change; NULL for a delete
