-- bench/history_versions.sql — 1 000 000 versions with metrics in model "vbench"
-- (written straight into strata.db by bench/history.sh; not a migration).
PRAGMA foreign_keys=OFF;
BEGIN;
INSERT INTO models(name, next_version, created_at) VALUES ('vbench', 1000001, '2026-01-01T00:00:00Z');
INSERT OR IGNORE INTO blobs(digest, size, created_at)
  VALUES ('0000000000000000000000000000000000000000000000000000000000000000', 1, '2026-01-01T00:00:00Z');
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
INSERT INTO versions(model_id, number, digest, size, format, run, epoch, metrics, created_at)
  SELECT (SELECT id FROM models WHERE name = 'vbench'), i,
         '0000000000000000000000000000000000000000000000000000000000000000', 1, 'keras2-weights',
         'r' || (i % 100), i / 100,
         json_object('val_loss', abs(random() % 1000000) / 1e6, 'loss', abs(random() % 1000000) / 1e6),
         '2026-01-01T00:00:00Z'
  FROM n;
INSERT INTO version_metrics(version_id, model_id, metric, value)
  SELECT v.id, v.model_id, 'val_loss', json_extract(v.metrics, '$.val_loss') FROM versions v
  WHERE v.model_id = (SELECT id FROM models WHERE name = 'vbench');
INSERT INTO version_metrics(version_id, model_id, metric, value)
  SELECT v.id, v.model_id, 'loss', json_extract(v.metrics, '$.loss') FROM versions v
  WHERE v.model_id = (SELECT id FROM models WHERE name = 'vbench');
COMMIT;
ANALYZE;
