package dev.mlstack.streaming;

import java.util.HashMap;
import java.util.Map;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code parse_event(payload, 'name:type,...')}: the declared fields of a JSON event as text, or
 * {@code {"__reason__": why}} when the event is unusable.
 *
 * <p>{@code parse_event(payload, 'name:type,...', 'kind', 'placed:a b;delivered:a c')}: a stream of several
 * kinds. The event names its kind in the field {@code kind}; it must carry exactly its kind's fields (listed with
 * the kind, including the kind field and event time), and only those are returned: the others are absent. An
 * unknown kind, or a field of its kind missing or mistyped, is a reason naming the kind.
 *
 * <p>Declared non-deterministic on purpose: the planner then computes it once per event and shares the result
 * with every INSERT branch, instead of inlining (and re-running) it wherever a field is used.
 */
public class ParseEvent extends ScalarFunction {
    private static final ObjectMapper JSON = new ObjectMapper();
    private transient String schema;
    private transient String[] names;
    private transient String[] types;
    private transient int[] all;
    private transient String kindSchema;
    private transient Map<String, int[]> byKind;

    public @DataTypeHint("MAP<STRING, STRING>") Map<String, String> eval(String payload, String declared) {
        return parse(payload, declared, null, null);
    }

    public @DataTypeHint("MAP<STRING, STRING>") Map<String, String> eval(
            String payload, String declared, String kindField, String kinds) {
        return parse(payload, declared, kindField, kinds);
    }

    private Map<String, String> parse(String payload, String declared, String kindField, String kinds) {
        if (!declared.equals(schema)) {
            String[] entries = declared.split(",");
            names = new String[entries.length];
            types = new String[entries.length];
            all = new int[entries.length];
            for (int i = 0; i < entries.length; i++) {
                String[] pair = entries[i].split(":", 2);
                names[i] = pair[0];
                types[i] = pair[1];
                all[i] = i;
            }
            schema = declared;
            kindSchema = null;
        }
        if (kinds != null && !kinds.equals(kindSchema)) {
            byKind = kindIndex(kinds);
            kindSchema = kinds;
        }
        JsonNode event;
        try {
            event = payload == null ? null : JSON.readTree(payload);
        } catch (Exception e) {
            event = null;
        }
        if (event == null || !event.isObject()) {
            return reason("invalid JSON");
        }
        int[] carried = all;
        String where = "";
        if (kindField != null) {
            JsonNode value = event.get(kindField);
            if (value == null || value.isNull()) {
                return reason("missing field " + kindField);
            }
            String kind = EventJson.text("string", value);
            carried = kind == null ? null : byKind.get(kind);
            if (carried == null) {
                return reason("unknown kind '" + (kind == null ? value.toString() : kind) + "'");
            }
            where = " (kind " + kind + ")";
        }
        Map<String, String> fields = new HashMap<>(carried.length * 2);
        for (int i : carried) {
            JsonNode value = event.get(names[i]);
            if (value == null || value.isNull()) {
                return reason("missing field " + names[i] + where);
            }
            String text = EventJson.text(types[i], value);
            if (text == null) {
                return reason("field " + names[i] + " is not a " + types[i] + where);
            }
            fields.put(names[i], text);
        }
        return fields;
    }

    /** {@code 'placed:a b;delivered:a c'} as kind -> indices of its fields among the declared ones. */
    private Map<String, int[]> kindIndex(String kinds) {
        Map<String, Integer> position = new HashMap<>(names.length * 2);
        for (int i = 0; i < names.length; i++) {
            position.put(names[i], i);
        }
        Map<String, int[]> index = new HashMap<>();
        for (String entry : kinds.split(";")) {
            String[] pair = entry.split(":", 2);
            String[] fields = pair[1].trim().split(" ");
            int[] carried = new int[fields.length];
            for (int i = 0; i < fields.length; i++) {
                carried[i] = position.get(fields[i]);
            }
            index.put(pair[0], carried);
        }
        return index;
    }

    private static Map<String, String> reason(String why) {
        Map<String, String> result = new HashMap<>(2);
        result.put("__reason__", why);
        return result;
    }

    @Override
    public boolean isDeterministic() {
        return false;
    }
}
