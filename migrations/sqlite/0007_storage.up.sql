-- Objects in object storage that Keel knows of: uploads users started (pending until confirmed)
-- and objects stored by the app or its jobs. The bytes live in the storage backend under `key`.
CREATE TABLE storage_objects (
    id            TEXT PRIMARY KEY,
    user_id       TEXT,
    key           TEXT NOT NULL UNIQUE,
    content_type  TEXT NOT NULL,
    size          INTEGER NOT NULL,
    state         TEXT NOT NULL,
    visibility    TEXT NOT NULL,
    checksum      TEXT,
    created_at    INTEGER NOT NULL,
    confirmed_at  INTEGER,
    expires_at    INTEGER
);
CREATE INDEX storage_objects_user_idx ON storage_objects (user_id, created_at);
CREATE INDEX storage_objects_expires_idx ON storage_objects (expires_at);
