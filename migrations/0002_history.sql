-- 0002_history: indexes for training history (issue 5). Never edit once landed.
-- history's primary key (run_id, metric, epoch) serves per-metric reads; an
-- epoch's rows (replace an epoch on re-post, "did it exist", epoch counts and
-- ranges of a run) need (run_id, epoch).
CREATE INDEX history_run_epoch ON history(run_id, epoch);
