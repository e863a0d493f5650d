/// The product's version: one constant that `custos --version`, `custos version` and the
/// daemon's `health` answer all print, so a probe and an operator read the same thing. It has
/// a module of its own so that every layer that reports it can depend on it without depending
/// on anything else.
public enum CustosVersion {
    /// Semantic versioning: raise it with every release.
    public static let release = "0.1.0"

    /// The release, followed by the commit a packaged build was made from (`+g<commit>`, with
    /// `.dirty` when the tree had changes): `make dist` stamps it (`BuildStamp.swift`), and a
    /// build from its source tarball keeps that stamp without needing git.
    public static let string = buildStamp.isEmpty ? release : release + "+" + buildStamp
}
