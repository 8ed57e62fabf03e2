-- Fewer rows written per event (D1 bills every table row and every index entry as a row written; the Workers
-- Free plan allows 100 000 a day). Every row, id, tombstone and audit row is copied as it is.
--
-- organizations and users become WITHOUT ROWID tables keyed by their id (one B-tree instead of a rowid
-- table plus an index on the id), and keep only the indexes a query uses:
--   organizations: code (UNIQUE: idempotent creates), (parent_id, id) (children, delete refusal, parent flags);
--   users: username (UNIQUE: idempotent creates, renames), (organization_id, id) (members, delete refusal,
--   organization flags).
-- Dropped: organizations_by_name, users_by_username_nocase (the UNIQUE index already covers username),
-- users_by_name and users_by_email (the read API's search is a substring LIKE, which no index serves).
-- A create now writes 3 rows (table, unique key, parent / organization), its audit row 1.
--
-- deliveries: a plain INTEGER PRIMARY KEY instead of AUTOINCREMENT (which writes sqlite_sequence on every
-- insert), and partial indexes over failures only, instead of an index on every row's code. Ids still only
-- grow: a new id is the largest plus one, and the retention trim never deletes the newest row.

CREATE TABLE organizations_0003 (
  id TEXT PRIMARY KEY,                          -- ours: 'org_' + 12 base62 characters
  code TEXT NOT NULL UNIQUE,                    -- OneAccess's key for idempotent creates
  name TEXT NOT NULL,
  parent_id TEXT,                               -- NULL: a root organization
  parent_missing INTEGER NOT NULL DEFAULT 0,    -- 1: parent_id names no live organization (yet)
  extensions TEXT NOT NULL DEFAULT '{}',        -- tenant extension attributes, one JSON object
  event_ts INTEGER NOT NULL,
  version INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  deleted_at INTEGER
) WITHOUT ROWID;
INSERT INTO organizations_0003 (id, code, name, parent_id, parent_missing, extensions, event_ts, version, created_at, updated_at, deleted_at)
  SELECT id, code, name, parent_id, parent_missing, extensions, event_ts, version, created_at, updated_at, deleted_at FROM organizations;
DROP TABLE organizations;
ALTER TABLE organizations_0003 RENAME TO organizations;
CREATE INDEX organizations_by_parent ON organizations (parent_id, id);

CREATE TABLE users_0003 (
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
  version INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  deleted_at INTEGER
) WITHOUT ROWID;
INSERT INTO users_0003 (id, username, name, organization_id, organization_missing, disabled, first_name, middle_name, last_name,
    mobile, email, extensions, password_hash, event_ts, version, created_at, updated_at, deleted_at)
  SELECT id, username, name, organization_id, organization_missing, disabled, first_name, middle_name, last_name,
    mobile, email, extensions, password_hash, event_ts, version, created_at, updated_at, deleted_at FROM users;
DROP TABLE users;
ALTER TABLE users_0003 RENAME TO users;
CREATE INDEX users_by_organization ON users (organization_id, id);

CREATE TABLE deliveries_0003 (
  id INTEGER PRIMARY KEY,                       -- only grows: newest first is ORDER BY id DESC
  received_at INTEGER NOT NULL,
  event_type TEXT NOT NULL,
  nonce TEXT NOT NULL,
  code TEXT NOT NULL,                           -- the reply code: '200', '400', '404'
  message TEXT NOT NULL,
  entity_id TEXT,
  duration_ms INTEGER NOT NULL
);
INSERT INTO deliveries_0003 (id, received_at, event_type, nonce, code, message, entity_id, duration_ms)
  SELECT id, received_at, event_type, nonce, code, message, entity_id, duration_ms FROM deliveries ORDER BY id;
DROP TABLE deliveries;
ALTER TABLE deliveries_0003 RENAME TO deliveries;
-- Most audit rows are 200s: only the failures are indexed, newest first for the "failures only" views and
-- by code for the read API's code filter (a failure writes its audit row and these two entries).
CREATE INDEX deliveries_failed ON deliveries (id) WHERE code <> '200';
CREATE INDEX deliveries_failed_by_code ON deliveries (code, id) WHERE code <> '200';
