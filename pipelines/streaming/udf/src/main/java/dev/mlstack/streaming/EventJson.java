package dev.mlstack.streaming;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;

/** Type checks shared by the functions: the same rules as the contract's event field types. */
final class EventJson {
    private EventJson() {}

    /** The field as text if it has the declared type (numbers may come as strings), else null. */
    static String text(String type, JsonNode value) {
        if (value == null || value.isNull() || value.isContainerNode()) {
            return null;
        }
        switch (type) {
            case "string":
                return value.asText();
            case "boolean":
                if (value.isBoolean()) {
                    return value.asBoolean() ? "true" : "false";
                }
                String b = value.isTextual() ? value.asText().toLowerCase() : "";
                return b.equals("true") || b.equals("false") ? b : null;
            case "long":
                if (value.isIntegralNumber()) {
                    return value.asText();
                }
                Double l = number(value);
                return l != null && l == Math.rint(l) ? Long.toString(l.longValue()) : null;
            case "double":
                Double d = number(value);
                return d == null ? null : value.isTextual() ? value.asText() : Double.toString(d);
            default:
                return null;
        }
    }

    private static Double number(JsonNode value) {
        if (value.isNumber()) {
            double d = value.asDouble();
            return Double.isFinite(d) ? d : null;
        }
        if (value.isTextual()) {
            try {
                double d = Double.parseDouble(value.asText());
                return Double.isFinite(d) ? d : null;
            } catch (NumberFormatException e) {
                return null;
            }
        }
        return null;
    }
}
