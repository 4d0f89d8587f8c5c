//! The names a fleet's events are made of: people, hosts, projects,
//! documents, libraries. Picked from, never generated letter by letter, so
//! command lines read like ones from a real network.

/// Domain accounts of the people using the workstations.
pub const PEOPLE: &[&str] = &[
    "jdoe",
    "asmith",
    "mgarcia",
    "wchen",
    "pnovak",
    "kowalski.a",
    "lnguyen",
    "rpatel",
    "ehansen",
    "tmueller",
    "sokafor",
    "dkim",
    "admin.kl",
    "svc_backup",
    "svc_sql",
];

/// Linux logins.
pub const LINUX_USERS: &[&str] = &[
    "root", "www-data", "postgres", "ubuntu", "deploy", "jenkins", "jdoe", "wchen", "nobody",
];

/// Machine names (the event's `host`).
pub const WINDOWS_HOSTS: &[&str] = &[
    "WS-0142",
    "WS-0178",
    "WS-0203",
    "LT-JDOE",
    "LT-MGARCIA",
    "LF-FS01",
    "LF-DC01",
    "LF-SQL02",
    "BUILD-W11",
    "RDS-03",
];

/// Linux machine names.
pub const LINUX_HOSTS: &[&str] = &[
    "web-01",
    "web-02",
    "db-primary",
    "ci-runner-7",
    "k8s-node-3",
    "bastion",
    "dev-wchen",
];

/// The Windows domain.
pub const DOMAIN: &str = "LAWFIRM";

/// Source projects (repositories, solutions).
pub const PROJECTS: &[&str] = &[
    "billing-api",
    "CaseTracker",
    "doc-indexer",
    "Intranet.Web",
    "ledger",
    "matter-search",
    "payroll-sync",
    "portal-frontend",
    "TimeEntry",
    "trawl",
];

/// Document names, as users save them.
pub const DOCUMENTS: &[&str] = &[
    "Q3 report",
    "Engagement letter - Holt v Marsh",
    "minutes_2021-09-14",
    "Budget FY22 v3",
    "NDA draft (redline)",
    "invoice-10442",
    "Discovery schedule",
    "timesheet_wk37",
    "Brief - final FINAL",
    "client list",
];

/// Document extensions and the Office program that opens each.
pub const OFFICE_FILES: &[(&str, &str, &str)] = &[
    ("docx", "WINWORD.EXE", "Microsoft Word"),
    ("xlsx", "EXCEL.EXE", "Microsoft Excel"),
    ("pptx", "POWERPNT.EXE", "Microsoft PowerPoint"),
];

/// Java libraries, for class paths.
pub const JARS: &[&str] = &[
    "commons-lang3-3.12.0",
    "commons-io-2.11.0",
    "guava-31.1-jre",
    "jackson-databind-2.15.2",
    "jackson-core-2.15.2",
    "jackson-annotations-2.15.2",
    "slf4j-api-2.0.7",
    "logback-classic-1.4.8",
    "logback-core-1.4.8",
    "netty-all-4.1.94.Final",
    "spring-core-6.0.11",
    "spring-context-6.0.11",
    "spring-beans-6.0.11",
    "spring-web-6.0.11",
    "hibernate-core-6.2.7.Final",
    "postgresql-42.6.0",
    "HikariCP-5.0.1",
    "snakeyaml-2.0",
    "kotlin-stdlib-1.9.0",
    "annotations-24.0.1",
    "lucene-core-9.7.0",
    "lucene-analysis-common-9.7.0",
    "elasticsearch-8.9.0",
    "log4j-api-2.20.0",
    "log4j-core-2.20.0",
    "httpclient5-5.2.1",
    "httpcore5-5.2.2",
    "bcprov-jdk18on-1.76",
    "joda-time-2.12.5",
    "protobuf-java-3.24.0",
];

/// Debian packages, for `apt`/`dpkg` lines.
pub const PACKAGES: &[&str] = &[
    "openssl",
    "libssl3",
    "nginx",
    "postgresql-15",
    "python3-pip",
    "curl",
    "git",
    "docker-ce",
    "linux-image-6.1.0-13-amd64",
    "tzdata",
    "ca-certificates",
];

/// Chrome/Edge feature flags, for long renderer command lines.
pub const FEATURES: &[&str] = &[
    "BackForwardCache",
    "CalculateNativeWinOcclusion",
    "WinUseBrowserSpellChecker",
    "SharedArrayBuffer",
    "PartitionedCookies",
    "NetworkServiceInProcess2",
    "msUndersideButton",
    "EnableTLS13EarlyData",
    "ThirdPartyStoragePartitioning",
    "AutofillServerCommunication",
    "InterestFeedContentSuggestions",
    "OptimizationHints",
    "MediaRouter",
];

/// Internal web services, for `curl` and configuration lines.
pub const SERVICES: &[&str] = &[
    "api.lawfirm.internal",
    "metrics.lawfirm.internal",
    "git.lawfirm.internal",
    "registry.lawfirm.internal:5000",
    "vault.lawfirm.internal:8200",
];
