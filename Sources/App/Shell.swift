import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs external programs (PostgreSQL's tools) for `podid dev` and the local test database.
///
/// posix_spawn and waitpid rather than Foundation's Process: the programs are short-lived and run
/// before serving starts, and a plain waitpid cannot miss a child's exit.
enum Shell {
    /// The result of a finished program.
    struct Result {
        var status: Int32
        var output: String
    }

    /// A program failed.
    struct Failure: Error, CustomStringConvertible {
        var command: String
        var status: Int32
        var output: String
        var description: String { "`\(command)` exited with \(status): \(output.suffix(2000))" }
    }

    static var isRoot: Bool { geteuid() == 0 }

    /// Runs `arguments` (optionally as another user via runuser), with standard input from /dev/null,
    /// and returns its exit status and combined output.
    @discardableResult
    static func run(_ arguments: [String], asUser user: String? = nil, environment: [String: String]? = nil,
                    check: Bool = true) throws -> Result
    {
        var arguments = arguments
        // From `/`, a directory every user can enter, so that programs run as another user do not
        // fail on the current directory.
        if let user { arguments = ["/usr/sbin/runuser", "-u", user, "--", "/usr/bin/env", "-C", "/"] + arguments }
        // Output goes to a file, not a pipe: daemons a program starts (pg_ctl's postmaster) would
        // inherit the pipe and keep it open, so reading it to the end would never finish.
        let outputPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("podid-shell-\(UUID().uuidString)").path
        defer { unlink(outputPath) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var argv = arguments.map { strdup($0) } + [nil]
        var envp = env.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, &envp)
        guard spawned == 0 else {
            throw Failure(command: arguments.joined(separator: " "), status: -1,
                          output: "cannot start: \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS, which Swift does not import as macros.
        let exitCode: Int32 = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        let data = FileManager.default.contents(atPath: outputPath) ?? Data()
        let result = Result(status: exitCode, output: String(decoding: data, as: UTF8.self))
        if check && result.status != 0 {
            throw Failure(command: arguments.joined(separator: " "), status: result.status, output: result.output)
        }
        return result
    }

    /// Whether an executable exists at `path`.
    static func isExecutable(_ path: String) -> Bool {
        FileManager.default.isExecutableFile(atPath: path)
    }
}
