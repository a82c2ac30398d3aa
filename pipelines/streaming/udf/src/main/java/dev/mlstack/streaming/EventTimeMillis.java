package dev.mlstack.streaming;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code event_time_ms(payload, 'field')}: a top-level integral field of a JSON object, or null. It streams
 * through the document and stops at the field, because the planner evaluates a rowtime column in every branch.
 */
public class EventTimeMillis extends ScalarFunction {
    private static final JsonFactory FACTORY = new JsonFactory();

    public Long eval(String payload, String field) {
        if (payload == null) {
            return null;
        }
        try (JsonParser parser = FACTORY.createParser(payload)) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                return null;
            }
            JsonToken token;
            while ((token = parser.nextToken()) == JsonToken.FIELD_NAME) {
                String name = parser.currentName();
                token = parser.nextToken();
                if (name.equals(field)) {
                    if (token == JsonToken.VALUE_NUMBER_INT) {
                        return parser.getLongValue();
                    }
                    if (token == JsonToken.VALUE_STRING) {
                        return Long.parseLong(parser.getText());
                    }
                    return null;
                }
                parser.skipChildren();
            }
            return null;
        } catch (Exception e) {
            return null;
        }
    }
}
