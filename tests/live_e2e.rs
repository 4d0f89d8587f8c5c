//! End-to-end: `trawl watch` and `trawl record` on this machine, live.
//!
//! These load real eBPF programs and fanotify marks, so they need root (CI
//! runs as root); as another user each test says so and passes without
//! running. They take one lock so that the exec storm measures trawl, not
//! the other tests.

#![cfg(target_os = "linux")]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

/// The test lock, or `None` (after saying why) when not root.
fn live_test(name: &str) -> Option<MutexGuard<'static, ()>> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next().map(str::to_owned));
    if uid.as_deref() != Some("0") {
        eprintln!(
            "{name}: skipped: live sensor tests need root (eBPF, fanotify); CI runs them as root"
        );
        return None;
    }
    Some(SERIAL.lock().unwrap_or_else(|p| p.into_inner()))
}

fn trawl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
}

/// A marker no other process on the machine carries.
fn marker(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("trawl{tag}{}x{nanos}", std::process::id())
}

/// A running `trawl watch` / `trawl record` whose stderr is collected.
struct Live {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
    ready_ms: u64,
}

impl Live {
    /// Starts trawl with `args` and waits for its "ready" line.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Live {
        let mut cmd = trawl();
        cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let mut child = cmd.spawn().expect("trawl starts");
        let err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut live = Live {
            child,
            lines,
            stderr: Vec::new(),
            ready_ms: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let line = live
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("trawl never became ready; stderr: {:#?}", live.stderr));
            let ready = line.contains("; ready in ");
            live.stderr.push(line);
            if ready {
                live.ready_ms = started.elapsed().as_millis() as u64;
                return live;
            }
        }
    }

    /// SIGTERM; waits (at most 5 s) for a clean exit and returns stderr.
    fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        let sent = Instant::now();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(5),
                "trawl did not stop within 5 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        // The reader thread ends at EOF, now that trawl has exited.
        self.stderr.extend(self.lines.iter());
        assert_eq!(
            status.code(),
            Some(0),
            "exit status; stderr: {:#?}",
            self.stderr
        );
        eprintln!(
            "trawl stopped {} ms after SIGTERM",
            sent.elapsed().as_millis()
        );
        self.stderr
    }
}

/// The alert (or trace) lines written to `path` so far.
fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Waits (at most 3 s from `since`) for an alert matching `pred`.
fn wait_alert(path: &Path, since: Instant, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_alert_within(Duration::from_secs(3), path, since, what, pred)
}

/// Waits at most `limit` from `since` for an alert matching `pred`.
fn wait_alert_within(
    limit: Duration,
    path: &Path,
    since: Instant,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        if let Some(a) = json_lines(path).into_iter().find(|a| pred(a)) {
            eprintln!("{what}: alert after {} ms", since.elapsed().as_millis());
            return a;
        }
        assert!(
            since.elapsed() < limit,
            "no alert for {what} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The key=value pairs of the last line starting with `prefix`.
fn stats(stderr: &[String], prefix: &str) -> std::collections::HashMap<String, u64> {
    let line = stderr
        .iter()
        .rev()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in {stderr:#?}"));
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
        .collect()
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// A folder with a rule file (a command-line marker, a path prefix under
/// `watched/drop/`), an IOC list naming a script's hash, and the script.
struct Fixture {
    dir: tempfile::TempDir,
    mark: String,
    hash: String,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mark = marker(tag);
        let watched = dir.path().join("watched");
        std::fs::create_dir_all(watched.join("drop")).unwrap();
        std::fs::write(
            dir.path().join("rules.yml"),
            format!(
                "title: e2e marker process\nid: e2e-proc\nlogsource: {{category: process_creation, product: linux}}\n\
                 detection: {{sel: {{CommandLine|contains: '{mark}'}}, condition: sel}}\nlevel: high\n---\n\
                 title: e2e dropped file\nid: e2e-file\nlogsource: {{category: file_event, product: linux}}\n\
                 detection: {{sel: {{TargetFilename|startswith: '{}/'}}, condition: sel}}\nlevel: high\n",
                watched.join("drop").display()
            ),
        )
        .unwrap();
        // The script lives outside the watched folder, so its hash is known
        // before trawl starts; it is copied in (a new file) during the test.
        let script = dir.path().join("payload.sh");
        std::fs::write(&script, format!("#!/bin/sh\necho {mark} >/dev/null\n")).unwrap();
        let hash = sha256(&script);
        std::fs::write(
            dir.path().join("e2e.iocs"),
            format!("# title: e2e payload\n{hash} e2e payload\n"),
        )
        .unwrap();
        Fixture { dir, mark, hash }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn watch_args(&self, output: &Path) -> Vec<String> {
        [
            "watch",
            "--no-default-rules",
            "--rules",
            self.path("rules.yml").to_str().unwrap(),
            "--iocs",
            self.path("e2e.iocs").to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--watch",
            self.path("watched").to_str().unwrap(),
            "--stats-interval",
            "1",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// Runs the three activities; returns when each was done.
    fn act(&self) -> [Instant; 3] {
        let t_proc = Instant::now();
        let ok = Command::new("/bin/echo")
            .arg(format!("{}-argv", self.mark))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success());
        let t_file = Instant::now();
        std::fs::write(self.path("watched/drop/note.txt"), "dropped").unwrap();
        let t_exec = Instant::now();
        let script = self.path("watched/payload.sh");
        std::fs::copy(self.path("payload.sh"), &script).unwrap();
        set_executable(&script);
        assert!(Command::new(&script).status().unwrap().success());
        [t_proc, t_file, t_exec]
    }
}

fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn rule(a: &Value) -> &str {
    a["rule_id"].as_str().unwrap()
}

#[test]
fn watch_alerts_on_a_process_a_file_and_a_hash_within_3s_and_stops_on_sigterm() {
    let Some(_lock) = live_test("watch_alerts") else {
        return;
    };
    let fx = Fixture::new("w");
    let out = fx.path("alerts.ndjson");
    let live = Live::start(&args(&fx.watch_args(&out)), &[]);
    eprintln!("watch ready {} ms after spawn", live.ready_ms);
    assert!(
        live.ready_ms < 5000,
        "watch took {} ms to start",
        live.ready_ms
    );
    let [t_proc, t_file, t_exec] = fx.act();

    let proc_alert = wait_alert(&out, t_proc, "process marker", |a| {
        rule(a) == "e2e-proc"
            && a["event"]["CommandLine"]
                .as_str()
                .is_some_and(|c| c.contains("-argv"))
    });
    assert_eq!(proc_alert["kind"], "process_start");
    assert_eq!(proc_alert["event"]["Image"], "/usr/bin/echo");
    assert!(
        proc_alert["event"]["ParentImage"]
            .as_str()
            .is_some_and(|p| p.contains("live_e2e")),
        "{proc_alert}"
    );

    let note = fx.path("watched/drop/note.txt").canonicalize().unwrap();
    let file_alert = wait_alert(&out, t_file, "dropped file", |a| {
        rule(a) == "e2e-file" && a["kind"] == "file_create"
    });
    assert_eq!(
        file_alert["event"]["TargetFilename"],
        note.to_str().unwrap()
    );
    assert_eq!(file_alert["event"]["ProcessId"], std::process::id());

    let hash_alert = wait_alert(&out, t_exec, "script hash", |a| {
        rule(a) == "ioc:e2e.iocs" && a["kind"] == "process_start"
    });
    assert_eq!(
        hash_alert["matches"][0]["value"],
        fx.hash.as_str(),
        "{hash_alert}"
    );
    assert_eq!(hash_alert["event"]["Hashes"], format!("SHA256={}", fx.hash));
    let script = fx.path("watched/payload.sh").canonicalize().unwrap();
    assert_eq!(
        hash_alert["event"]["ExecFilename"],
        script.to_str().unwrap()
    );
    assert_eq!(hash_alert["event"]["Image"], "/usr/bin/dash");

    // Long enough for one periodic stats line (--stats-interval 1).
    std::thread::sleep(Duration::from_millis(1200));
    let stderr = live.stop();
    assert!(
        stderr.iter().any(|l| l.starts_with("trawl: stats: ")),
        "periodic stats line: {stderr:#?}"
    );
    let last = stats(&stderr, "trawl: stopped: ");
    assert!(last["alerts"] >= 3, "{last:?}");
    assert!(
        last["in.process_start"] >= 3 && last["in.file_create"] >= 2,
        "{last:?}"
    );
    assert!(last["hash.misses"] >= 1, "{last:?}");
}

#[test]
fn a_recorded_trace_replays_to_the_alerts_the_live_run_gave() {
    let Some(_lock) = live_test("record_replay") else {
        return;
    };
    let fx = Fixture::new("r");
    let live_alerts = fx.path("live.ndjson");
    let trace = fx.path("trace.ndjson");
    let watch = Live::start(&args(&fx.watch_args(&live_alerts)), &[]);
    let record = Live::start(
        &[
            "record",
            "--output",
            trace.to_str().unwrap(),
            "--watch",
            fx.path("watched").to_str().unwrap(),
        ],
        &[],
    );
    let [_, _, t_exec] = fx.act();
    wait_alert(&live_alerts, t_exec, "script hash", |a| {
        rule(a) == "ioc:e2e.iocs" && a["kind"] == "process_start"
    });
    // Give the recorder the same moment to catch up, then stop both.
    std::thread::sleep(Duration::from_millis(300));
    let rec_err = record.stop();
    watch.stop();
    assert!(
        stats(&rec_err, "trawl: stopped: ")["written"] >= 3,
        "{rec_err:#?}"
    );

    let replayed = fx.path("replayed.ndjson");
    let out = trawl()
        .args(["replay", "--no-default-rules", "--rules"])
        .arg(fx.path("rules.yml"))
        .arg("--iocs")
        .arg(fx.path("e2e.iocs"))
        .arg("--output")
        .arg(&replayed)
        .arg(&trace)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The alerts on the test's own activity: (rule, kind, pid, target).
    let ours = |path: &Path| -> BTreeSet<(String, String, u64, String)> {
        json_lines(path)
            .iter()
            .filter(|a| {
                a.to_string().contains(&fx.mark)
                    || a.to_string().contains(fx.dir.path().to_str().unwrap())
            })
            .map(|a| {
                let e = &a["event"];
                (
                    rule(a).to_owned(),
                    a["kind"].as_str().unwrap().to_owned(),
                    e["ProcessId"].as_u64().unwrap_or(0),
                    e["TargetFilename"]
                        .as_str()
                        .or(e["CommandLine"].as_str())
                        .unwrap_or("")
                        .to_owned(),
                )
            })
            .collect()
    };
    let live = ours(&live_alerts);
    let again = ours(&replayed);
    let rules: BTreeSet<&str> = live.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        rules,
        BTreeSet::from(["e2e-file", "e2e-proc", "ioc:e2e.iocs"]),
        "{live:#?}"
    );
    assert_eq!(live, again, "live alerts vs replay of the recorded trace");
}

#[test]
fn argv_of_3_kib_arrives_whole_and_64_kib_arrives_cut_with_the_flag() {
    let Some(_lock) = live_test("argv") else {
        return;
    };
    let fx = Fixture::new("a");
    let out = fx.path("alerts.ndjson");
    let live = Live::start(&args(&fx.watch_args(&out)), &[]);
    let small = format!("{}-small {}", fx.mark, "s".repeat(3 * 1024));
    let big = format!("{}-big {}", fx.mark, "b".repeat(64 * 1024));
    let t = Instant::now();
    for a in [&small, &big] {
        assert!(Command::new("/bin/true")
            .args(a.split(' '))
            .status()
            .unwrap()
            .success());
    }
    let whole = wait_alert(&out, t, "3 KiB argv", |a| {
        a["event"]["CommandLine"]
            .as_str()
            .is_some_and(|c| c.contains("-small"))
    });
    assert_eq!(whole["event"]["CommandLine"], format!("/bin/true {small}"));
    assert!(
        whole["event"].get("Truncated").is_none(),
        "{}",
        whole["event"]
    );
    let cut = wait_alert(&out, t, "64 KiB argv", |a| {
        a["event"]["CommandLine"]
            .as_str()
            .is_some_and(|c| c.contains("-big"))
    });
    assert_eq!(cut["event"]["Truncated"], true);
    let line = cut["event"]["CommandLine"].as_str().unwrap();
    assert!(
        line.len() >= 4096 && line.len() < big.len(),
        "kept {} bytes",
        line.len()
    );
    assert!(format!("/bin/true {big}").starts_with(line));
    live.stop();
}

#[test]
fn a_file_left_open_at_exit_names_the_process_that_wrote_it() {
    let Some(_lock) = live_test("left_open") else {
        return;
    };
    let fx = Fixture::new("o");
    let out = fx.path("alerts.ndjson");
    let live = Live::start(&args(&fx.watch_args(&out)), &[]);
    // Each shell exits with its file still open: the kernel closes it after
    // the exit event, when /proc no longer has the process's image. (The
    // pause first lets the shell's own start reach trawl before its file
    // event: the two come from different kernel interfaces.)
    for i in 0..10 {
        let target = fx.path(&format!("watched/drop/left-open-{i}.txt"));
        let t = Instant::now();
        let st = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!(
                "sleep 0.2; exec 3>'{}'; echo data >&3; exit 0",
                target.display()
            ))
            .status()
            .unwrap();
        assert!(st.success());
        let target = target.canonicalize().unwrap();
        // Latency is not what this test is about: a generous limit.
        let limit = Duration::from_secs(20);
        let write = wait_alert_within(limit, &out, t, "file closed at exit", |a| {
            rule(a) == "e2e-file"
                && a["kind"] == "file_write"
                && a["event"]["TargetFilename"] == target.to_str().unwrap()
        });
        assert_eq!(write["event"]["Image"], "/usr/bin/dash", "{write}");
    }
    live.stop();
}

/// Spawns `n` short processes carrying `mark`, from `threads` threads, as
/// fast as they go; returns processes per second.
fn exec_storm(n: usize, threads: usize, mark: &str) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for i in (t..n).step_by(threads) {
                    let st = Command::new("/bin/true")
                        .arg(mark)
                        .arg(i.to_string())
                        .status()
                        .unwrap();
                    assert!(st.success());
                }
            });
        }
    });
    n as f64 / start.elapsed().as_secs_f64()
}

/// Runs a storm under `trawl watch` and checks that every process was seen
/// or counted as lost. Returns (seen, lost) and prints the figures.
fn storm_under_watch(n: usize, env: &[(&str, &str)]) -> (u64, u64) {
    let fx = Fixture::new("s");
    let out = fx.path("alerts.ndjson");
    let live = Live::start(&args(&fx.watch_args(&out)), env);
    let rate = exec_storm(n, 4, &fx.mark);
    // Let the last alerts through before stopping.
    std::thread::sleep(Duration::from_millis(500));
    let stderr = live.stop();
    let last = stats(&stderr, "trawl: stopped: ");
    let seen: BTreeSet<u64> = json_lines(&out)
        .iter()
        .filter(|a| rule(a) == "e2e-proc")
        .filter_map(|a| {
            a["event"]["CommandLine"]
                .as_str()?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let seen = seen.len() as u64;
    let lost = last["ebpf.lost_exec"]
        + last
            .get("dropped.intake.process_start")
            .copied()
            .unwrap_or(0)
        + last["dropped.output"];
    eprintln!(
        "exec storm: {n} processes at {rate:.0}/s; {seen} seen, {lost} process starts lost and reported \
         (ebpf.lost_exec={}, ebpf.lost_fork={}, ebpf.lost_exit={}, dropped.intake={}, dropped.output={})",
        last["ebpf.lost_exec"], last["ebpf.lost_fork"], last["ebpf.lost_exit"], last["dropped.intake"], last["dropped.output"]
    );
    assert!(seen <= n as u64);
    if lost == 0 {
        assert_eq!(
            seen, n as u64,
            "nothing reported lost, yet processes are missing"
        );
    } else {
        assert!(
            seen + lost >= n as u64,
            "{seen} seen + {lost} lost < {n}: silent loss"
        );
    }
    (seen, lost)
}

#[test]
fn an_exec_storm_of_20000_processes_is_seen_whole_or_its_loss_counted() {
    let Some(_lock) = live_test("storm") else {
        return;
    };
    storm_under_watch(20_000, &[]);
}

#[test]
fn a_tiny_ring_buffer_loses_events_in_the_kernel_and_says_how_many() {
    let Some(_lock) = live_test("ringbuf_loss") else {
        return;
    };
    // One page: a burst overflows it, and every record the kernel could not
    // queue must show up in ebpf.lost_*.
    storm_under_watch(3_000, &[("TRAWL_RINGBUF_BYTES", "4096")]);
}

#[test]
fn the_proc_connector_fallback_and_default_filesystem_marks_alert() {
    let Some(_lock) = live_test("proc_connector") else {
        return;
    };
    let fx = Fixture::new("p");
    let out = fx.path("alerts.ndjson");
    // No --watch: every local filesystem is marked.
    let mut a = fx.watch_args(&out);
    let at = a.iter().position(|x| x == "--watch").unwrap();
    a.drain(at..at + 2);
    a.extend(["--source", "proc-connector"].map(str::to_owned));
    let live = Live::start(&args(&a), &[]);
    let said = |what: &str| live.stderr.iter().any(|l| l.contains(what));
    assert!(
        said("process events by the netlink proc connector"),
        "{:#?}",
        live.stderr
    );
    assert!(said("file events by fanotify on "), "{:#?}", live.stderr);
    // Forced or fallen back to, the proc connector says what it cannot see.
    assert!(
        said("--source proc-connector") && said("proc_connector.exec_unreadable"),
        "{:#?}",
        live.stderr
    );
    let t = Instant::now();
    // Alive long enough for /proc to be read after the exec message.
    let st = Command::new("/bin/sh")
        .args(["-c", "sleep 0.3", &format!("{}-pc", fx.mark)])
        .status()
        .unwrap();
    assert!(st.success());
    let alert = wait_alert(&out, t, "proc connector marker", |a| rule(a) == "e2e-proc");
    assert_eq!(alert["event"]["Image"], "/usr/bin/dash");
    let t = Instant::now();
    std::fs::write(fx.path("watched/drop/any.txt"), "x").unwrap();
    wait_alert(&out, t, "file on a default mark", |a| rule(a) == "e2e-file");
    let stderr = live.stop();
    assert!(stats(&stderr, "trawl: stopped: ").contains_key("proc_connector.lost_overruns"));
}
