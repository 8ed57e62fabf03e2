-- Row versions for optimistic concurrency. Every event that writes an organization or user row raises its
-- `version`, so an event decided from a row (read, or remembered from this isolate's last write) can check
-- in its batch that the row is still exactly that one. `event_ts` alone cannot tell apart two writes that
-- carry the same event timestamp (equal timestamps are applied, section 6).
ALTER TABLE organizations ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
