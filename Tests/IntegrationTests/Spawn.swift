import Glibc

/// Starts `executable` with posix_spawn, the child's signal mask empty and the signals a daemon
/// handles at their default disposition.
///
/// Why: tests run on the concurrency pool's worker threads, which block the asynchronous
/// signals, and a spawned child inherits the spawning thread's mask through exec. The daemon
/// unblocks what it waits for (Daemon.run), but other children (the node-sync sidecars,
/// slurmctld, systemd-socket-activate) do not: with SIGTERM blocked they never saw the test's
/// `kill(pid, SIGTERM)`, and every stop waited out `eventually`'s deadline before SIGKILL.
/// Returns posix_spawn's result (0 on success) and the pid.
func spawnWithCleanSignals(_ executable: String, _ argv: [String], _ envp: [String],
                           _ actions: inout posix_spawn_file_actions_t) -> (rc: Int32, pid: pid_t) {
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attr, &none)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for sig in [SIGPIPE, SIGTERM, SIGHUP, SIGINT, SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2] { sigaddset(&defaults, sig) }
    posix_spawnattr_setsigdefault(&attr, &defaults)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let args = argv.map { strdup($0) } + [nil]
    let env = envp.map { strdup($0) } + [nil]
    defer { for p in args + env { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, executable, &actions, &attr, args, env)
    return (rc, pid)
}
