// Written by deploy/stamp-version.sh during `make dist`, then restored: a build from a checkout
// has no stamp; the source tarball carries the stamped copy.
extension CustosVersion {
    static let buildStamp = ""
}
