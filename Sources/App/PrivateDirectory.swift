import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The data directory of `podid dev` and `podid postgres`: it holds the admin token, the database
/// passwords and the simulators' state, so it is created 0700 and every file podid writes is 0600 from
/// the moment it exists (the process's umask is 077), not made so after it was written.
public enum PrivateDirectory {
    /// Makes every file and directory this process creates from now on private to its user (umask 077):
    /// for the commands that own a data directory, never for a library caller.
    public static func restrictNewFiles() {
        umask(0o077)
    }

    /// Creates `path` (with missing parents) as 0700, narrowing it to 0700 when it exists with wider
    /// permissions.
    public static func prepare(_ path: String) throws {
        let manager = FileManager.default
        try manager.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let mode = (try manager.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? 0
        if mode & 0o077 != 0 { try manager.setAttributes([.posixPermissions: 0o700], ofItemAtPath: path) }
    }
}
