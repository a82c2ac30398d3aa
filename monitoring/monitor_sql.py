"""Flink SQL of the monitor job: served predictions joined with the labels that came back for them.

Reads ``<c>.predictions`` (the inference log, ``serving/README.md``) as raw text and ``<c>.labels``
(``pipelines.streaming.sql.labels_sink``: ``{key, label, event_time}``), and writes one record per labelled
prediction to ``<c>.scored``, keyed by the request id::

    {"request_id": "5f0c...", "row": 0, "model_version": "3", "event_time": 1764478210123,
     "label_time": 1764478990456, "key": "order-881", "prediction": {"scores": {...}, "label": "on_time"},
     "label": "late"}

``event_time`` is the prediction's (when it was scored), ``label_time`` the label event's, ``prediction`` the log's
object as logged. A prediction pairs with a label of its feedback key whose time lies in
``[event_time - watermark_s, event_time + max_delay_s]``: an interval join, so Flink drops a prediction from its state
once the label stream's watermark is past its upper bound, and a label once the predictions' is past its lower one.
A label outside the bound (an outcome known before the prediction was made, or later than the component declares
labels can come) judges nothing.

Unusable prediction records (not JSON, or without request id, model version, time, feedback key or prediction, or
behind the watermark) go to ``<c>.predictions.dlq`` with a reason, as the feature job's dead letters do.

Duplicates: the sinks are at-least-once, like the feature job's, so a restore from a checkpoint may write a pair
again, and a label the feature job wrote twice (its own replay) pairs twice. Every copy is the same record
(same request id, row and label time), so readers count a pair once by ``(request_id, row)``; deduplicating here
would need keyed state kept for ``max_delay_s`` per prediction on top of the join's.

Standard library, ``contract`` and ``pipelines.streaming`` only: this runs in the streaming environment and image.
"""

from __future__ import annotations

from typing import Any

from pipelines.streaming.sql import AT_LEAST_ONCE, MAX_FUTURE_S, SQL_TYPES, _kafka, _seconds


def consumer_group(component: str) -> str:
    """The monitor job's Kafka consumer group on the predictions and labels topics (offsets committed on
    checkpoints, so its lag says how far the monitor is behind)."""
    return f"{component}-monitor"


def _feedback(spec: dict[str, Any]) -> dict[str, Any]:
    feedback: dict[str, Any] | None = spec.get("feedback")
    if not feedback:
        raise ValueError(
            f"component {spec['component']!r} declares no feedback: its predictions have no labels to join"
        )
    return feedback


def _duration(seconds: int) -> str:
    """An interval of any length: ``SECOND(n)`` takes at most 3 digits in Flink (4200 s fails to plan)."""
    days, rest = divmod(int(seconds), 86_400)
    return f"INTERVAL '{days} {rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}' DAY TO SECOND"


def _string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def label_type(spec: dict[str, Any]) -> str:
    """The SQL type of the component's label (its declared event field's)."""
    name = _feedback(spec)["label"]
    field = next((f for f in spec["events"]["fields"] if f["name"] == name), None)
    if field is None:
        raise ValueError(f"the feedback label {name!r} is not a declared event field")
    return SQL_TYPES[field["type"]]


def predictions_source(spec: dict[str, Any], bootstrap: str, group_id: str) -> str:
    """The inference log as one text column plus Kafka metadata, with the prediction's time as rowtime.

    The rowtime is never NULL: records without a usable time get epoch 0, which never moves the watermark (they are
    dead letters below)."""
    options = {
        "properties.group.id": group_id,
        "scan.startup.mode": "group-offsets",
        "properties.auto.offset.reset": "earliest",
        "format": "raw",
        "raw.charset": "UTF-8",
    }
    # JSON_VALUE(... RETURNING BIGINT) fails on a non-integer (ClassCastException): parse the text, then cast.
    parsed = "TRY_CAST(JSON_VALUE(payload, '$.event_time') AS BIGINT)"
    return f"""
    CREATE TABLE predictions_raw (
      payload STRING,
      src_partition INT METADATA FROM 'partition' VIRTUAL,
      src_offset BIGINT METADATA FROM 'offset' VIRTUAL,
      kafka_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
      time_ms AS {parsed},
      pred_ts AS CASE WHEN {parsed} IS NOT NULL AND TO_TIMESTAMP_LTZ({parsed}, 3) <= kafka_ts + {_seconds(MAX_FUTURE_S)}
                      THEN TO_TIMESTAMP_LTZ({parsed}, 3) ELSE TO_TIMESTAMP_LTZ(0, 3) END,
      WATERMARK FOR pred_ts AS pred_ts - {_seconds(spec["watermark_s"])}
    ) {_kafka(spec["topics"]["predictions"], bootstrap, **options)}"""


def labels_source(spec: dict[str, Any], bootstrap: str, group_id: str) -> str:
    """The labels the feature job publishes (already checked there: late and malformed events are its dead
    letters), with the label event's time as rowtime. A record that still fails to parse is skipped, not fatal."""
    options = {
        "properties.group.id": group_id,
        "scan.startup.mode": "group-offsets",
        "properties.auto.offset.reset": "earliest",
        "format": "json",
        "json.ignore-parse-errors": "true",
    }
    return f"""
    CREATE TABLE labels_raw (
      `key` STRING,
      `label` {label_type(spec)},
      `event_time` BIGINT,
      label_ts AS TO_TIMESTAMP_LTZ(COALESCE(`event_time`, 0), 3),
      WATERMARK FOR label_ts AS label_ts - {_seconds(spec["watermark_s"])}
    ) {_kafka(spec["topics"]["labels"], bootstrap, **options)}"""


def checked_view(spec: dict[str, Any]) -> str:
    """Every prediction record with its fields pulled out and ``reason``: NULL when usable, else why it is a dead
    letter. The feedback key is an entity key or a request field: whichever of the two the record carries."""
    key = _feedback(spec)["key"]
    fields = (
        "JSON_VALUE(payload, '$.request_id') AS request_id, "
        "TRY_CAST(JSON_VALUE(payload, '$.row') AS INT) AS row_index, "
        "JSON_VALUE(payload, '$.model_version') AS model_version, "
        f"COALESCE(JSON_VALUE(payload, '$.entities.{key}'), JSON_VALUE(payload, '$.request.{key}')) AS feedback_key, "
        "JSON_QUERY(payload, '$.prediction') AS prediction"
    )
    reason = (
        "CASE WHEN NOT (payload IS JSON OBJECT) THEN 'invalid JSON' "
        "WHEN request_id IS NULL THEN 'missing request_id' "
        "WHEN model_version IS NULL THEN 'missing model_version' "
        "WHEN time_ms IS NULL THEN 'missing or non-integer event_time' "
        f"WHEN feedback_key IS NULL THEN {_string(f'missing feedback key {key} (in entities or request)')} "
        "WHEN prediction IS NULL THEN 'missing prediction' "
        f"WHEN TO_TIMESTAMP_LTZ(time_ms, 3) > kafka_ts + {_seconds(MAX_FUTURE_S)} THEN 'event time in the future' "
        "WHEN pred_ts <= CURRENT_WATERMARK(pred_ts) THEN 'late prediction (behind the watermark)' END"
    )
    return (
        f"CREATE TEMPORARY VIEW predictions_checked AS SELECT *, {reason} AS reason "
        f"FROM (SELECT *, {fields} FROM predictions_raw)"
    )


def scored_sink(spec: dict[str, Any], bootstrap: str) -> str:
    """``<c>.scored``: the record built as JSON text (the prediction object passes through as logged), keyed by
    the request id so one request's rows stay on one partition."""
    options = {
        "key.format": "raw",
        "key.fields": "request_id",
        "value.format": "raw",
        "value.fields-include": "EXCEPT_KEY",
        **AT_LEAST_ONCE,
    }
    return f"""
    CREATE TABLE scored_out (
      request_id STRING, record STRING
    ) {_kafka(spec["topics"]["scored"], bootstrap, **options)}"""


def scored_insert(spec: dict[str, Any]) -> str:
    """Each usable prediction with every label of its key inside ``[t - watermark_s, t + max_delay_s]``."""
    feedback = _feedback(spec)
    record = (
        "JSON_OBJECT(KEY 'request_id' VALUE p.request_id, KEY 'row' VALUE p.row_index, "
        "KEY 'model_version' VALUE p.model_version, KEY 'event_time' VALUE p.time_ms, "
        "KEY 'label_time' VALUE l.`event_time`, KEY 'key' VALUE p.feedback_key, "
        "KEY 'prediction' VALUE JSON(p.prediction), KEY 'label' VALUE l.`label` NULL ON NULL)"
    )
    return f"""
    INSERT INTO scored_out
    SELECT p.request_id, {record}
    FROM (SELECT request_id, row_index, model_version, time_ms, feedback_key, prediction, pred_ts
          FROM predictions_checked WHERE reason IS NULL) AS p
    JOIN (SELECT `key`, `label`, `event_time`, label_ts FROM labels_raw
          WHERE `key` IS NOT NULL AND `event_time` IS NOT NULL) AS l
      ON p.feedback_key = l.`key`
     AND l.label_ts BETWEEN p.pred_ts - {_seconds(spec["watermark_s"])}
                        AND p.pred_ts + {_duration(feedback["max_delay_s"])}"""


def dead_letter_sink(spec: dict[str, Any], bootstrap: str) -> str:
    """``<c>.predictions.dlq``: ``{reason, payload, src_partition, src_offset, kafka_ts}``, as the feature job's."""
    options = {"format": "json", "json.timestamp-format.standard": "ISO-8601", **AT_LEAST_ONCE}
    return f"""
    CREATE TABLE prediction_dead_letters (
      reason STRING, payload STRING, src_partition INT, src_offset BIGINT, kafka_ts TIMESTAMP_LTZ(3)
    ) {_kafka(spec["topics"]["predictions_dead_letter"], bootstrap, **options)}"""


def dead_letter_insert() -> str:
    return (
        "INSERT INTO prediction_dead_letters SELECT reason, payload, src_partition, src_offset, kafka_ts "
        "FROM predictions_checked WHERE reason IS NOT NULL"
    )
