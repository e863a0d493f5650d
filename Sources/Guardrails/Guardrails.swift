/// Guardrails: rules no Cedar permit can override (see docs/guardrails.md).
public enum GuardrailsInfo {
    public static let version = 1
}
