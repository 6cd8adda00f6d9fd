-- Lightbox catalog, PostgreSQL. One table per DICOM level; surrogate keys
-- so that later tables (consultations, shares, audit trail) can refer to a
-- study or an instance by a stable, small id. UIDs and blob keys use the
-- "C" collation: byte order, which is what the orphan scan merges on.

CREATE TABLE patients (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- A patient is the same person only when ID, name and birth date all
    -- agree: instances without a Patient ID, or two hospitals' different
    -- people under one ID, must never be shown under one name.
    patient_key       TEXT NOT NULL UNIQUE,
    patient_id        TEXT NOT NULL,
    patient_name      TEXT NOT NULL DEFAULT '',
    patient_name_norm TEXT NOT NULL DEFAULT '',
    birth_date        TEXT NOT NULL DEFAULT '',
    sex               TEXT NOT NULL DEFAULT ''
);
CREATE INDEX patients_name_norm ON patients (patient_name_norm);
CREATE INDEX patients_id ON patients (patient_id);

CREATE TABLE studies (
    id                       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_pk               BIGINT NOT NULL REFERENCES patients (id),
    study_uid                TEXT COLLATE "C" NOT NULL UNIQUE,
    study_date               TEXT NOT NULL DEFAULT '',
    study_time               TEXT NOT NULL DEFAULT '',
    accession_number         TEXT NOT NULL DEFAULT '',
    study_description        TEXT NOT NULL DEFAULT '',
    referring_physician      TEXT NOT NULL DEFAULT '',
    referring_physician_norm TEXT NOT NULL DEFAULT '',
    study_id                 TEXT NOT NULL DEFAULT ''
);
CREATE INDEX studies_patient ON studies (patient_pk);
CREATE INDEX studies_date ON studies (study_date, study_time, id);
CREATE INDEX studies_accession ON studies (accession_number);

CREATE TABLE series (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    study_pk           BIGINT NOT NULL REFERENCES studies (id),
    series_uid         TEXT COLLATE "C" NOT NULL UNIQUE,
    modality           TEXT NOT NULL DEFAULT '',
    series_number      INTEGER,
    series_description TEXT NOT NULL DEFAULT ''
);
CREATE INDEX series_study ON series (study_pk);

CREATE TABLE instances (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    series_pk           BIGINT NOT NULL REFERENCES series (id),
    sop_uid             TEXT COLLATE "C" NOT NULL UNIQUE,
    sop_class_uid       TEXT COLLATE "C" NOT NULL,
    instance_number     INTEGER,
    number_of_frames    INTEGER NOT NULL DEFAULT 1,
    pixel_rows          INTEGER NOT NULL DEFAULT 0,
    pixel_columns       INTEGER NOT NULL DEFAULT 0,
    transfer_syntax_uid TEXT COLLATE "C" NOT NULL DEFAULT '',
    size                BIGINT NOT NULL,
    sha256              BYTEA NOT NULL CHECK (length(sha256) = 32),
    blob_key            TEXT COLLATE "C" NOT NULL UNIQUE,
    received_at         TIMESTAMPTZ NOT NULL,
    source              TEXT NOT NULL DEFAULT ''
);
CREATE INDEX instances_series ON instances (series_pk);
