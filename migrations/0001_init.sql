-- 0001_init: the registry's first schema. Never edit once landed; add 0002_… instead.
-- Applied by storage/ in one transaction and recorded in schema_migrations.

CREATE TABLE architectures (
    id          TEXT PRIMARY KEY,                 -- 'sha256:<hex>' of the canonical config
    name        TEXT,
    config      TEXT NOT NULL,                    -- canonical Keras config JSON
    summary     TEXT NOT NULL,                    -- engine's answer JSON (layers, shapes, params)
    created_at  TEXT NOT NULL
);

CREATE TABLE models (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    architecture  TEXT REFERENCES architectures(id),
    description   TEXT,
    monitor_metric TEXT,
    monitor_mode  TEXT CHECK (monitor_mode IN ('min', 'max')),
    next_version  INTEGER NOT NULL DEFAULT 1,     -- numbers are never reused
    created_at    TEXT NOT NULL
);

CREATE TABLE blobs (
    digest      TEXT PRIMARY KEY,                 -- lowercase hex sha256, no prefix
    size        INTEGER NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE versions (
    id          INTEGER PRIMARY KEY,
    model_id    INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,
    digest      TEXT NOT NULL REFERENCES blobs(digest),
    size        INTEGER NOT NULL,
    format      TEXT NOT NULL,
    run         TEXT,
    epoch       INTEGER,
    metrics     TEXT,                             -- JSON object of numbers, or NULL
    notes       TEXT,
    parent      TEXT,                             -- 'model@N' or NULL
    validation  TEXT,                             -- JSON object from the engine
    created_at  TEXT NOT NULL,
    UNIQUE (model_id, number)
);
CREATE INDEX versions_digest ON versions(digest);
CREATE INDEX versions_run_epoch ON versions(model_id, run, epoch);

CREATE TABLE version_layers (
    version_id  INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    digest      TEXT,                             -- sha256 of the layer's tensors, or NULL
    params      INTEGER NOT NULL,
    weights     TEXT NOT NULL,                    -- JSON array [{name, shape, dtype}]
    PRIMARY KEY (version_id, position)
);

-- Every metric of every version, one row each: order_by=metrics.X uses the index.
CREATE TABLE version_metrics (
    version_id  INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    model_id    INTEGER NOT NULL,
    metric      TEXT NOT NULL,
    value       REAL NOT NULL,
    PRIMARY KEY (version_id, metric)
);
CREATE INDEX version_metrics_order ON version_metrics(model_id, metric, value);

CREATE TABLE tags (
    model_id    INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    version_id  INTEGER NOT NULL REFERENCES versions(id),
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (model_id, name)
);
CREATE INDEX tags_version ON tags(version_id);

CREATE TABLE tag_moves (
    id          INTEGER PRIMARY KEY,
    model_id    INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    tag         TEXT NOT NULL,
    from_version INTEGER,                         -- version number, NULL when created
    to_version  INTEGER,                          -- version number, NULL when deleted
    reason      TEXT NOT NULL,                    -- 'put', 'upload', 'monitor', 'delete'
    moved_at    TEXT NOT NULL
);
CREATE INDEX tag_moves_tag ON tag_moves(model_id, tag, id);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    model_id    INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (model_id, name)
);

CREATE TABLE history (
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch       INTEGER NOT NULL,
    metric      TEXT NOT NULL,
    value       REAL NOT NULL,
    PRIMARY KEY (run_id, metric, epoch)
) WITHOUT ROWID;

CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT,
    hash        TEXT NOT NULL UNIQUE,             -- hex sha256 of the token; the token itself is never stored
    scope       TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
