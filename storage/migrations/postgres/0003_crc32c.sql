-- The stored bytes' checksum is now CRC-32C (Castagnoli) instead of
-- SHA-256: hashing every received instance with SHA-256 was a sixth of
-- the CPU of an ingest. Duplicates are told from conflicting copies by
-- comparing the bytes themselves, so the checksum is only for fixity
-- checks (and a shortcut when two copies differ). Instances stored
-- before this version have none (NULL).

ALTER TABLE instances ADD COLUMN crc32c BIGINT CHECK (crc32c BETWEEN 0 AND 4294967295);
ALTER TABLE instances DROP COLUMN sha256;
