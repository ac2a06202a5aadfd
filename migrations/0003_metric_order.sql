-- 0003_metric_order: order_by=metrics.X walks one index in order, ties broken
-- by version (version ids grow with version numbers within a model), so a
-- page of the search is read without sorting the model's versions.
DROP INDEX version_metrics_order;
CREATE INDEX version_metrics_order ON version_metrics(model_id, metric, value, version_id);
