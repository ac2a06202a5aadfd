-- 0005_version_search: every search of GET …/versions reads a page by
-- walking an index in order, or a handful of rows (issue 7). Never edit once
-- landed. Before it, over 1 000 000 versions: run=<rare>&order_by=metrics.X
-- and tag=best&order_by=metrics.X walked the whole metric index (~9 s),
-- order_by=epoch sorted every version of the model (~6 s). (order_by=
-- created_at still sorts them: uploads have no other order than their ids.)

-- run=R&order_by=metrics.X: version_metrics carries its version's run, so
-- (model, metric, run, value, version) walks that run's values in order.
-- Kept by triggers: storage/versions.c writes a version's row before its
-- metrics and never changes a version's run (the update trigger is for
-- anything that ever does).
ALTER TABLE version_metrics ADD COLUMN run TEXT;
UPDATE version_metrics SET run = (SELECT run FROM versions WHERE versions.id = version_metrics.version_id);
CREATE INDEX version_metrics_run ON version_metrics(model_id, metric, run, value, version_id);

CREATE TRIGGER version_metrics_run_set AFTER INSERT ON version_metrics
BEGIN
    UPDATE version_metrics SET run = (SELECT run FROM versions WHERE id = NEW.version_id)
    WHERE version_id = NEW.version_id AND metric = NEW.metric;
END;

CREATE TRIGGER versions_run_moved AFTER UPDATE OF run ON versions
BEGIN
    UPDATE version_metrics SET run = NEW.run WHERE version_id = NEW.id;
END;

-- order_by=epoch, ties by version (st_version_list breaks them by id,
-- which grows with the number within a model: a new row's id is above every
-- live one), and min_epoch/max_epoch without run= (a narrow range is read
-- first). Not (…, number): SQLite could then take it as covering for a
-- model's max(number) and read all its versions.
CREATE INDEX versions_epoch ON versions(model_id, epoch);

-- Statistics for the new indexes only: where sqlite_stat1 already has rows
-- for the older ones (ANALYZE, PRAGMA optimize), an index without any looks
-- very selective to the planner, which then picked versions_epoch for the
-- max(number) of st_version_json and read a model's versions. No rows are
-- written for empty tables, so a fresh database keeps having no statistics.
ANALYZE version_metrics_run;
ANALYZE versions_epoch;
