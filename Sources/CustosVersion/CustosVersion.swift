/// The product's version: one constant that `custos --version`, `custos version` and the
/// daemon's `health` answer all print, so a probe and an operator read the same thing. It has
/// a module of its own so that every layer that reports it can depend on it without depending
/// on anything else.
public enum CustosVersion {
    /// Semantic versioning: raise it with every release.
    public static let string = "0.1.0"
}
