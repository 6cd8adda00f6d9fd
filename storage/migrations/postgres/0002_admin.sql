-- Admin records: the DIMSE allow-list and the DICOMweb API tokens. The
-- same tables as the SQLite schema.
--
-- pacs_nodes: one row per (AE title, host) that may associate. host is
-- canonical text (an address "10.0.0.5", a masked prefix "10.0.0.0/24" or
-- "any"); matching an address against prefixes is done in Go on the few
-- rows of one AE title, which the UNIQUE index finds.
--
-- api_tokens: only the SHA-256 of a token is kept. Roles are checked in Go,
-- not by a CHECK constraint, so that a new role needs no schema change.

CREATE TABLE pacs_nodes (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ae_title    TEXT COLLATE "C" NOT NULL,
    host        TEXT COLLATE "C" NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (ae_title, host)
);

CREATE TABLE api_tokens (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT COLLATE "C" NOT NULL UNIQUE,
    role         TEXT NOT NULL,
    token_hash   BYTEA NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
