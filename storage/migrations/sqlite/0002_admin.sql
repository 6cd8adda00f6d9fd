-- Admin records: the DIMSE allow-list and the DICOMweb API tokens.
--
-- pacs_nodes: one row per (AE title, host) that may associate. host is
-- canonical text (an address "10.0.0.5", a masked prefix "10.0.0.0/24" or
-- "any"); matching an address against prefixes is done in Go on the few
-- rows of one AE title, which the UNIQUE index finds.
--
-- api_tokens: only the SHA-256 of a token is kept. Roles are checked in Go,
-- not by a CHECK constraint, so that a new role needs no table rebuild.
-- Times are TEXT "2006-01-02T15:04:05.000000Z" (UTC, fixed width, so they
-- compare as strings); NULL means never.

CREATE TABLE pacs_nodes (
    id          INTEGER PRIMARY KEY,
    ae_title    TEXT NOT NULL,
    host        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    UNIQUE (ae_title, host)
) STRICT;

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL,
    token_hash   BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
) STRICT;
