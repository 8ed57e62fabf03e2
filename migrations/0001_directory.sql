-- The mirrored OneAccess directory (contract sections 4 and 6).
-- Times are Unix milliseconds. `event_ts` is the timestamp of the last event applied to the row: events
-- with an older or equal timestamp are acknowledged and ignored (last event wins). `deleted_at` marks a
-- tombstone; reads hide tombstones, and a create of the same code / username revives the row and its id.

CREATE TABLE organizations (
  id TEXT PRIMARY KEY,                          -- ours: 'org_' + 12 base62 characters
  code TEXT NOT NULL UNIQUE,                    -- OneAccess's key for idempotent creates
  name TEXT NOT NULL,
  parent_id TEXT,                               -- NULL: a root organization
  parent_missing INTEGER NOT NULL DEFAULT 0,    -- 1: parent_id names no live organization (yet)
  extensions TEXT NOT NULL DEFAULT '{}',        -- tenant extension attributes, one JSON object
  event_ts INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  deleted_at INTEGER
);

-- Children of an organization (tree reads, delete refusal, clearing parent_missing).
CREATE INDEX organizations_by_parent ON organizations (parent_id, id);
-- Text search on name (code is covered by its UNIQUE index for exact and prefix lookups).
CREATE INDEX organizations_by_name ON organizations (name COLLATE NOCASE);

CREATE TABLE users (
  id TEXT PRIMARY KEY,                          -- ours: 'usr_' + 12 base62 characters
  username TEXT NOT NULL UNIQUE,                -- OneAccess's key for idempotent creates
  name TEXT NOT NULL,
  organization_id TEXT,
  organization_missing INTEGER NOT NULL DEFAULT 0, -- 1: organization_id names no live organization (yet)
  disabled INTEGER NOT NULL DEFAULT 0,
  first_name TEXT,
  middle_name TEXT,
  last_name TEXT,
  mobile TEXT,
  email TEXT,
  extensions TEXT NOT NULL DEFAULT '{}',
  -- Only with PASSWORD_POLICY=pbkdf2: 'pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>'. Never plaintext.
  password_hash TEXT,
  event_ts INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  deleted_at INTEGER
);

-- Members of an organization, paginated by id (also: delete refusal, clearing organization_missing).
CREATE INDEX users_by_organization ON users (organization_id, id);
-- Case-insensitive text search (prefix LIKE can use NOCASE indexes).
CREATE INDEX users_by_username_nocase ON users (username COLLATE NOCASE);
CREATE INDEX users_by_name ON users (name COLLATE NOCASE);
CREATE INDEX users_by_email ON users (email COLLATE NOCASE);

-- Codes and usernames an entity gave up in a rename, with that rename's event timestamp. A create of such
-- a key that is older than the rename is a late event about the renamed entity (acknowledged with its id,
-- ignored), not a new entity.
CREATE TABLE released_keys (
  entity TEXT NOT NULL CHECK (entity IN ('organization', 'user')),
  key TEXT NOT NULL,                            -- the former code / username
  entity_id TEXT NOT NULL,
  released_ts INTEGER NOT NULL,
  PRIMARY KEY (entity, key)
) WITHOUT ROWID;

-- One audit row per authenticated callback. Never payloads, passwords or secrets.
CREATE TABLE deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,         -- increasing: newest first is ORDER BY id DESC
  received_at INTEGER NOT NULL,
  event_type TEXT NOT NULL,
  nonce TEXT NOT NULL,
  code TEXT NOT NULL,                           -- the reply code: '200', '400', '404'
  message TEXT NOT NULL,
  entity_id TEXT,
  duration_ms INTEGER NOT NULL
);

CREATE INDEX deliveries_by_code ON deliveries (code, id);

-- Optimistic concurrency. Each event is planned from a read, then written as one batch whose first
-- statement inserts into this view whether what the plan read is still true. When another event changed it
-- in between, the trigger aborts, D1 rolls the whole batch back, and the event is planned again.
-- The view never holds a row.
CREATE VIEW snapshot_checks AS SELECT 1 AS holds WHERE 0;

CREATE TRIGGER snapshot_checks_abort INSTEAD OF INSERT ON snapshot_checks
WHEN NEW.holds IS NOT 1
BEGIN
  SELECT RAISE(ABORT, 'directory snapshot changed');
END;
