"""Flink SQL for a component's streaming spec (a JSON dict, see ``contract.streaming.StreamingSpec``).

Standard library and ``contract`` only: this runs inside the streaming environment and image. Every event is read
as raw text and parsed by our Java functions (``udf/``), which never throw, so a malformed event becomes a dead
letter with a reason instead of failing the job.
"""

from __future__ import annotations

from typing import Any

from contract.streaming import Aggregate

SQL_TYPES = {"string": "STRING", "long": "BIGINT", "double": "DOUBLE", "boolean": "BOOLEAN"}
#: How far ahead of its Kafka timestamp an event time may be; later ones would drag the watermark forward.
MAX_FUTURE_S = 300
#: A marker event (``{"__watermark__": true, "<event_time>": t}``) only moves the watermark: it closes every
#: window ending before ``t`` when a bounded replay is over, and is neither a feature input nor a dead letter.
WATERMARK_MARKER = "__watermark__"


def _seconds(n: int) -> str:
    # Calcite's default SECOND precision is 2 digits: 300 seconds needs SECOND(3).
    return f"INTERVAL '{int(n)}' SECOND({max(2, len(str(int(n))))})"


def _kafka(topic: str, bootstrap: str, **options: str) -> str:
    """The WITH clause of a Kafka table."""
    pairs = {"connector": "kafka", "topic": topic, "properties.bootstrap.servers": bootstrap, **options}
    return "WITH (" + ", ".join(f"'{key}' = '{value}'" for key, value in pairs.items()) + ")"


FUNCTIONS = {
    "parse_event": "dev.mlstack.streaming.ParseEvent",
    "event_time_ms": "dev.mlstack.streaming.EventTimeMillis",
}


def functions() -> list[str]:
    """Registers the job's Java functions (the jar built from ``udf/`` must be on ``pipeline.jars``)."""
    return [f"CREATE TEMPORARY SYSTEM FUNCTION {name} AS '{cls}' LANGUAGE JAVA" for name, cls in FUNCTIONS.items()]


def source_table(spec: dict[str, Any], bootstrap: str, group_id: str) -> str:
    """The events topic as one text column plus Kafka metadata, with event time and watermark."""
    events = spec["events"]
    source_options = {
        "properties.group.id": group_id,
        "scan.startup.mode": "group-offsets",
        "properties.auto.offset.reset": "earliest",
        "format": "raw",
        "raw.charset": "UTF-8",
    }
    event_time = f"TO_TIMESTAMP_LTZ(event_time_ms(payload, '{events['event_time']}'), 3)"
    return f"""
    CREATE TABLE events_raw (
      payload STRING,
      src_partition INT METADATA FROM 'partition' VIRTUAL,
      src_offset BIGINT METADATA FROM 'offset' VIRTUAL,
      kafka_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
      parsed_ts AS {event_time},
      -- The rowtime is never NULL: unusable times become epoch 0, which never moves the watermark
      -- (those events are dead-lettered below).
      event_ts AS CASE WHEN {event_time} <= kafka_ts + {_seconds(MAX_FUTURE_S)} THEN {event_time}
                       ELSE TO_TIMESTAMP_LTZ(0, 3) END,
      WATERMARK FOR event_ts AS event_ts - {_seconds(spec["watermark_s"])}
    ) {_kafka(spec["topics"]["events"], bootstrap, **source_options)}"""


def checked_view(spec: dict[str, Any]) -> str:
    """Every event with ``reason``: NULL when it is usable, else why it goes to the dead-letter topic.

    ``parse_event`` (our Java function, ``udf/``) parses each payload once into a map ``e`` of field texts. Flink's
    own ``JSON_VALUE`` re-parses the document for every call and repeats the calls in every INSERT branch.
    """
    events = spec["events"]
    declared = ",".join(f"{f['name']}:{f['type']}" for f in events["fields"])
    parse = f"parse_event(payload, '{declared}')"
    if events.get("kinds"):
        # Each kind with every field it carries (the kind field and event time too): ParseEvent checks those.
        carried = ";".join(
            f"{kind['name']}:{' '.join([events['kind'], events['event_time'], *kind['fields']])}"
            for kind in events["kinds"]
        )
        parse = f"parse_event(payload, '{declared}', '{events['kind']}', '{carried}')"
    reason = (
        "CASE WHEN e['__reason__'] IS NOT NULL THEN e['__reason__'] "
        f"WHEN parsed_ts > kafka_ts + {_seconds(MAX_FUTURE_S)} THEN 'event time in the future' "
        "WHEN event_ts <= CURRENT_WATERMARK(event_ts) THEN 'late event (behind the watermark)' END"
    )
    # Markers are written by producer.advance_watermark with this exact prefix: a string test, not a JSON parse.
    marker = f"payload LIKE '{{\"{WATERMARK_MARKER}\": true%'"
    return (
        f"CREATE TEMPORARY VIEW events_checked AS SELECT *, {reason} AS reason, {marker} AS is_marker "
        f"FROM (SELECT *, {parse} AS e FROM events_raw)"
    )


def _field(field: dict[str, str]) -> str:
    name, kind = field["name"], field["type"]
    if kind == "string":
        return f"e['{name}']"
    if kind == "boolean":
        return f"(e['{name}'] = 'true')"
    return f"TRY_CAST(e['{name}'] AS {SQL_TYPES[kind]})"


def valid_view(spec: dict[str, Any]) -> str:
    """The usable events, typed."""
    columns = ", ".join(f"{_field(f)} AS `{f['name']}`" for f in spec["events"]["fields"])
    return (
        f"CREATE TEMPORARY VIEW events_ok AS SELECT {columns}, event_ts "
        "FROM events_checked WHERE reason IS NULL AND NOT is_marker"
    )


#: At-least-once: window results are deterministic, so a replay after a restore rewrites identical rows (the
#: online store keeps the newest window, history is deduplicated on (entity, window_end)), and results are
#: visible at once instead of after the next checkpoint's transaction commit.
AT_LEAST_ONCE = {"sink.delivery-guarantee": "at-least-once"}


def features_sink(spec: dict[str, Any], bootstrap: str) -> str:
    """One topic for all groups: ``{feature_view, entity, window_start, window_end, features{name: value}}``."""
    options = {
        "key.format": "raw",
        "key.fields": "entity",
        "value.format": "json",
        "value.json.timestamp-format.standard": "ISO-8601",
        **AT_LEAST_ONCE,
    }
    return f"""
    CREATE TABLE features_out (
      feature_view STRING,
      entity STRING,
      window_start TIMESTAMP(3),
      window_end TIMESTAMP(3),
      features MAP<STRING, DOUBLE>
    ) {_kafka(spec["topics"]["features"], bootstrap, **options)}"""


def dead_letter_sink(spec: dict[str, Any], bootstrap: str) -> str:
    """Dead letters: ``{reason, payload, src_partition, src_offset, kafka_ts}``."""
    options = {"format": "json", "json.timestamp-format.standard": "ISO-8601", **AT_LEAST_ONCE}
    return f"""
    CREATE TABLE dead_letters (
      reason STRING, payload STRING, src_partition INT, src_offset BIGINT, kafka_ts TIMESTAMP_LTZ(3)
    ) {_kafka(spec["topics"]["dead_letter"], bootstrap, **options)}"""


AGGREGATES = {"count": "COUNT(*)", "sum": "SUM({f})", "avg": "AVG({f})", "min": "MIN({f})", "max": "MAX({f})"}


def group_insert(group: dict[str, Any], kind_field: str | None = None) -> str:
    """A HOP window aggregation of one feature group into the features topic; only events of the group's
    ``kinds`` count when it names some (``kind_field`` is the events' field naming each event's kind)."""
    entries = []
    for aggregate in group["aggregates"]:
        expression = AGGREGATES[aggregate["function"]].format(f=f"CAST(`{aggregate['field']}` AS DOUBLE)")
        name = Aggregate(aggregate["function"], aggregate["field"]).feature_name
        entries.append(f"'{name}', CAST({expression} AS DOUBLE)")
    window = group["window"]
    kinds = group.get("kinds") or ()
    if kinds and not kind_field:
        raise ValueError(f"feature group {group['name']!r} filters by kinds, but no kind field is given")
    # A filter on the window function's output: the planner keeps it a window aggregation over the kept rows.
    only = f"\n    WHERE `{kind_field}` IN ({', '.join(_string(k) for k in kinds)})" if kinds else ""
    return f"""
    INSERT INTO features_out
    SELECT '{group["name"]}', CAST(`{group["entity"]}` AS STRING), window_start, window_end, MAP[{", ".join(entries)}]
    FROM TABLE(HOP(TABLE events_ok, DESCRIPTOR(event_ts),
                   {_seconds(window["slide_s"])}, {_seconds(window["size_s"])})){only}
    GROUP BY `{group["entity"]}`, window_start, window_end"""


def _string(text: str) -> str:
    """A SQL string literal (kind names match the contract's name pattern; quotes are doubled regardless)."""
    return "'" + text.replace("'", "''") + "'"


def labels_sink(spec: dict[str, Any], bootstrap: str) -> str:
    """Labels that arrive as their own events (``StreamingSpec.feedback``), on ``<component>.labels``:
    ``{key, label, event_time}``, keyed by ``key`` so one key's labels stay in order on one partition.

    Generic field names, so one consumer (training, the monitor) reads every component's labels: ``key`` is the
    feedback key as text (an order id), ``label`` the label in its declared type, ``event_time`` the label
    event's time in epoch milliseconds."""
    feedback = spec["feedback"]
    label_type = next(f["type"] for f in spec["events"]["fields"] if f["name"] == feedback["label"])
    options = {"key.format": "raw", "key.fields": "key", "value.format": "json", **AT_LEAST_ONCE}
    return f"""
    CREATE TABLE labels_out (
      `key` STRING, `label` {SQL_TYPES[label_type]}, `event_time` BIGINT
    ) {_kafka(spec["topics"]["labels"], bootstrap, **options)}"""


def labels_insert(spec: dict[str, Any]) -> str:
    """Every usable event of the feedback kind, as its label (late ones are dead letters like any late event)."""
    feedback, events = spec["feedback"], spec["events"]
    return (
        f"INSERT INTO labels_out SELECT CAST(`{feedback['key']}` AS STRING), `{feedback['label']}`, "
        f"`{events['event_time']}` FROM events_ok WHERE `{events['kind']}` = {_string(feedback['kind'])}"
    )


def dead_letter_insert() -> str:
    return (
        "INSERT INTO dead_letters SELECT reason, payload, src_partition, src_offset, kafka_ts "
        "FROM events_checked WHERE reason IS NOT NULL AND NOT is_marker"
    )
