//! Ordinary Linux process starts: web and database servers, CI runners and
//! developers' machines (shell pipelines, package managers, interpreters,
//! container shims, long JVM command lines).

use super::rng::Rng;
use super::words::{JARS, PACKAGES, PROJECTS, SERVICES};
use super::Proc;

const BASH: (&str, &str) = ("/usr/bin/bash", "-bash");
const SYSTEMD: (&str, &str) = ("/usr/lib/systemd/systemd", "/sbin/init splash");
const CRON: (&str, &str) = ("/usr/sbin/cron", "/usr/sbin/cron -f -P");
const CONTAINERD: (&str, &str) = (
    "/usr/bin/containerd",
    "/usr/bin/containerd --config /etc/containerd/config.toml",
);

/// One kind of ordinary process start.
pub type Template = fn(&mut Rng, &str) -> Proc;

/// The ordinary Linux starts, weighted by how often servers see them.
pub const TEMPLATES: &[(u32, Template)] = &[
    (10, shell_pipeline),
    (1, curl),
    (6, python),
    (4, sshd),
    (5, systemd_units),
    (6, git),
    (4, containerd_shim),
    (3, java),
    (10, coreutils),
    (4, apt),
    (3, node),
    (3, backup),
];

fn home(user: &str) -> String {
    if user == "root" {
        "/root".to_owned()
    } else {
        format!("/home/{user}")
    }
}

fn shell_pipeline(rng: &mut Rng, user: &str) -> Proc {
    let script = match rng.below(5) {
        0 => "cat /var/log/syslog | grep -E 'error|fail' | tail -n 50".to_owned(),
        1 => format!(
            "find {}/src -name '*.py' -mtime -1 | xargs wc -l | sort -n | tail -5",
            home(user)
        ),
        2 => "awk '{print $1}' /var/log/nginx/access.log | sort | uniq -c | sort -rn | head -20".to_owned(),
        3 => format!(
            "for f in /etc/nginx/sites-enabled/*; do nginx -t -c \"$f\" 2>&1 | grep -q ok || echo \"$f\"; done; echo {}",
            rng.hex(8)
        ),
        _ => "df -h --output=source,pcent,target | awk 'NR>1 && int($2) > 80'".to_owned(),
    };
    let (image, parent) = if rng.chance(500) {
        ("/usr/bin/bash", CRON)
    } else {
        ("/usr/bin/bash", BASH)
    };
    Proc::linux(
        user,
        image,
        format!("/bin/bash -c \"{script}\""),
        parent,
        home(user),
    )
}

fn curl(rng: &mut Rng, user: &str) -> Proc {
    let service = rng.pick(SERVICES);
    let cmd = match rng.below(3) {
        0 => format!(
            "curl -sS -H \"Authorization: Bearer {}\" https://{service}/v2/metrics?host={}",
            rng.hex(40),
            rng.private_ip()
        ),
        1 => "curl -fsSL https://deb.nodesource.com/setup_20.x -o /tmp/nodesource_setup.sh"
            .to_owned(),
        _ => format!(
            "curl --retry 3 --max-time 10 -o /dev/null -w %{{http_code}} https://{service}/healthz"
        ),
    };
    Proc::linux(user, "/usr/bin/curl", cmd, BASH, home(user))
}

fn python(rng: &mut Rng, user: &str) -> Proc {
    let project = rng.pick(PROJECTS);
    let cmd = match rng.below(4) {
        0 => "/usr/bin/python3 /usr/bin/unattended-upgrade --download-only".to_owned(),
        1 => format!(
            "python3 -m pip install --user -r {}/src/{project}/requirements.txt",
            home(user)
        ),
        2 => format!(
            "{}/src/{project}/.venv/bin/python manage.py runserver 0.0.0.0:{}",
            home(user),
            rng.range(8000, 8999)
        ),
        _ => format!(
            "/usr/bin/python3 -m pytest -q -x --maxfail=3 tests/ -k \"not slow\" --junitxml=/tmp/junit-{}.xml",
            rng.hex(6)
        ),
    };
    Proc::linux(
        user,
        "/usr/bin/python3.11",
        cmd,
        BASH,
        format!("{}/src/{project}", home(user)),
    )
}

fn sshd(rng: &mut Rng, _: &str) -> Proc {
    let who = rng.pick(&["jdoe", "deploy", "wchen", "ubuntu"]);
    let cmd = if rng.chance(500) {
        format!("sshd: {who} [priv]")
    } else {
        "/usr/sbin/sshd -D -R".to_owned()
    };
    Proc::linux(
        "root",
        "/usr/sbin/sshd",
        cmd,
        (
            "/usr/sbin/sshd",
            "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups",
        ),
        "/",
    )
}

fn systemd_units(rng: &mut Rng, _: &str) -> Proc {
    let (image, cmd) = *rng.pick(&[
        (
            "/usr/lib/systemd/systemd-journald",
            "/lib/systemd/systemd-journald",
        ),
        (
            "/usr/lib/systemd/systemd-logind",
            "/lib/systemd/systemd-logind",
        ),
        (
            "/usr/lib/systemd/systemd-tmpfiles",
            "/usr/bin/systemd-tmpfiles --clean",
        ),
        (
            "/usr/sbin/logrotate",
            "/usr/sbin/logrotate /etc/logrotate.conf",
        ),
        ("/usr/bin/run-parts", "run-parts --report /etc/cron.daily"),
    ]);
    Proc::linux("root", image, cmd.to_owned(), SYSTEMD, "/")
}

fn git(rng: &mut Rng, user: &str) -> Proc {
    let project = rng.pick(PROJECTS);
    let args = *rng.pick(&[
        "pull --ff-only",
        "fetch origin --prune --tags",
        "status --porcelain=v2 --branch",
        "log --oneline -n 20",
        "submodule update --init --recursive",
    ]);
    Proc::linux(
        user,
        "/usr/bin/git",
        format!("git -C {}/src/{project} {args}", home(user)),
        BASH,
        home(user),
    )
}

fn containerd_shim(rng: &mut Rng, _: &str) -> Proc {
    Proc::linux(
        "root",
        "/usr/bin/containerd-shim-runc-v2",
        format!(
            "/usr/bin/containerd-shim-runc-v2 -namespace moby -id {} -address /run/containerd/containerd.sock",
            rng.hex(64)
        ),
        CONTAINERD,
        format!("/run/containerd/io.containerd.runtime.v2.task/moby/{}", rng.hex(64)),
    )
}

fn java(rng: &mut Rng, _: &str) -> Proc {
    let n = rng.range(5, 60) as usize;
    let classpath: Vec<String> = (0..n)
        .map(|_| format!("/usr/share/elasticsearch/lib/{}.jar", rng.pick(JARS)))
        .collect();
    let cmd = format!(
        "/usr/share/elasticsearch/jdk/bin/java -Xshare:auto -Des.networkaddress.cache.ttl=60 \
         -Des.networkaddress.cache.negative.ttl=10 -Djava.security.manager=allow -XX:+AlwaysPreTouch \
         -Xss1m -Djava.awt.headless=true -Dfile.encoding=UTF-8 -Djna.nosys=true -XX:-OmitStackTraceInFastThrow \
         -Dio.netty.noUnsafe=true -Dlog4j.shutdownHookEnabled=false -Djava.io.tmpdir=/tmp/elasticsearch-{} \
         -XX:+HeapDumpOnOutOfMemoryError -XX:HeapDumpPath=/var/lib/elasticsearch -Xms{}g -Xmx{}g \
         -cp {} org.elasticsearch.bootstrap.Elasticsearch -p /var/run/elasticsearch/elasticsearch.pid --quiet",
        rng.range(1_000_000_000_000, 9_999_999_999_999),
        rng.range(1, 4),
        rng.range(4, 16),
        classpath.join(":")
    );
    Proc::linux(
        "elasticsearch",
        "/usr/share/elasticsearch/jdk/bin/java",
        cmd,
        SYSTEMD,
        "/usr/share/elasticsearch",
    )
}

fn coreutils(rng: &mut Rng, user: &str) -> Proc {
    let (image, cmd) = match rng.below(8) {
        0 => ("/usr/bin/sleep", "sleep 30".to_owned()),
        1 => (
            "/usr/bin/ls",
            "ls -la --color=auto /var/www/html".to_owned(),
        ),
        2 => (
            "/usr/bin/grep",
            "grep -rn --include=*.rs TODO src/".to_owned(),
        ),
        3 => (
            "/usr/bin/sed",
            format!(
                "sed -i s/replicas: [0-9]*/replicas: {}/ deploy.yaml",
                rng.range(1, 9)
            ),
        ),
        4 => ("/usr/bin/cat", "cat /proc/meminfo".to_owned()),
        5 => ("/usr/bin/sort", "sort -k2 -t, -n report.csv".to_owned()),
        6 => ("/usr/bin/du", format!("du -sh {}/.cache", home(user))),
        _ => ("/usr/bin/date", "date +%Y-%m-%dT%H:%M:%S%z".to_owned()),
    };
    Proc::linux(user, image, cmd, BASH, home(user))
}

fn apt(rng: &mut Rng, _: &str) -> Proc {
    let pkg = rng.pick(PACKAGES);
    let (image, cmd) = match rng.below(3) {
        0 => ("/usr/bin/apt-get", "apt-get -qq update".to_owned()),
        1 => (
            "/usr/bin/apt-get",
            format!("apt-get install -y --only-upgrade {pkg}"),
        ),
        _ => ("/usr/bin/dpkg", format!("dpkg --status {pkg}")),
    };
    Proc::linux("root", image, cmd, BASH, "/root")
}

fn node(rng: &mut Rng, user: &str) -> Proc {
    let project = rng.pick(PROJECTS);
    let cmd = *rng.pick(&[
        "node /usr/lib/node_modules/npm/bin/npm-cli.js ci --no-audit --no-fund",
        "node node_modules/.bin/webpack --mode production --config webpack.prod.js",
        "node dist/server.js --port 3000",
    ]);
    Proc::linux(
        user,
        "/usr/bin/node",
        cmd.to_owned(),
        BASH,
        format!("{}/src/{project}", home(user)),
    )
}

fn backup(rng: &mut Rng, user: &str) -> Proc {
    let (image, cmd) = if rng.chance(500) {
        (
            "/usr/bin/tar",
            format!(
                "tar -czf /backup/home-{}.tar.gz {}",
                rng.range(20210901, 20210930),
                home(user)
            ),
        )
    } else {
        (
            "/usr/bin/rsync",
            "rsync -az --delete --exclude=.cache /srv/data/ backup01:/srv/data/".to_owned(),
        )
    };
    Proc::linux("root", image, cmd, CRON, "/root")
}
