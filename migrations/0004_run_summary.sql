-- 0004_run_summary: the run list (GET …/runs) without reading a run's rows
-- (issue 7: 100 runs x 10 000 values took ~1 s). Never edit once landed.
--
-- Epoch count: runs.epochs, kept by triggers on every writer of history
-- (storage/history.c's batches, the checkpoint rows of storage/versions.c).
-- An insert adds an epoch when the run has no row at that epoch yet; a
-- delete removes one when it took the epoch's last row. The insert trigger
-- runs BEFORE so that INSERT OR REPLACE of an existing (run, metric, epoch)
-- still sees the old row: REPLACE then deletes it without firing delete
-- triggers, as long as PRAGMA recursive_triggers stays off (SQLite's
-- default; storage/store.c never sets it).
ALTER TABLE runs ADD COLUMN epochs INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET epochs = (SELECT count(DISTINCT epoch) FROM history WHERE history.run_id = runs.id);

CREATE TRIGGER history_epoch_added BEFORE INSERT ON history
WHEN NOT EXISTS (SELECT 1 FROM history WHERE run_id = NEW.run_id AND epoch = NEW.epoch)
BEGIN
    UPDATE runs SET epochs = epochs + 1 WHERE id = NEW.run_id;
END;

CREATE TRIGGER history_epoch_removed AFTER DELETE ON history
WHEN NOT EXISTS (SELECT 1 FROM history WHERE run_id = OLD.run_id AND epoch = OLD.epoch)
BEGIN
    UPDATE runs SET epochs = epochs - 1 WHERE id = OLD.run_id;
END;

-- Nothing updates these columns today; should anything, recount both runs.
CREATE TRIGGER history_epoch_moved AFTER UPDATE OF run_id, epoch ON history
BEGIN
    UPDATE runs SET epochs = (SELECT count(DISTINCT epoch) FROM history WHERE history.run_id = runs.id)
    WHERE id IN (OLD.run_id, NEW.run_id);
END;

-- Best value of each metric of a run: the first entry of (run, metric) is
-- the min with its earliest epoch; the max is the last entry's value, then
-- one more seek for its earliest epoch. One index seek each instead of a
-- GROUP BY over all of the run's rows.
CREATE INDEX history_best ON history(run_id, metric, value, epoch);
-- Statistics for it alone (see 0005 for why): where the older indexes have
-- some, one without looks more selective than the primary key to the
-- planner. Empty tables get no rows.
ANALYZE history_best;
