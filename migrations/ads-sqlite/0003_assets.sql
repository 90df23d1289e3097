-- Uploaded ad assets, named by the SHA-256 of their bytes.
CREATE TABLE assets (
    id             TEXT PRIMARY KEY,
    content_type   TEXT NOT NULL,
    bytes          BLOB NOT NULL,
    created_at_ms  INTEGER NOT NULL
);
