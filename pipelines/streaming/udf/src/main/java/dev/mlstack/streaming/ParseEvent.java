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
 * <p>Declared non-deterministic on purpose: the planner then computes it once per event and shares the result
 * with every INSERT branch, instead of inlining (and re-running) it wherever a field is used.
 */
public class ParseEvent extends ScalarFunction {
    private static final ObjectMapper JSON = new ObjectMapper();
    private transient String schema;
    private transient String[] names;
    private transient String[] types;

    public @DataTypeHint("MAP<STRING, STRING>") Map<String, String> eval(String payload, String declared) {
        if (!declared.equals(schema)) {
            String[] entries = declared.split(",");
            names = new String[entries.length];
            types = new String[entries.length];
            for (int i = 0; i < entries.length; i++) {
                String[] pair = entries[i].split(":", 2);
                names[i] = pair[0];
                types[i] = pair[1];
            }
            schema = declared;
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
        Map<String, String> fields = new HashMap<>(names.length * 2);
        for (int i = 0; i < names.length; i++) {
            JsonNode value = event.get(names[i]);
            if (value == null || value.isNull()) {
                return reason("missing field " + names[i]);
            }
            String text = EventJson.text(types[i], value);
            if (text == null) {
                return reason("field " + names[i] + " is not a " + types[i]);
            }
            fields.put(names[i], text);
        }
        return fields;
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
