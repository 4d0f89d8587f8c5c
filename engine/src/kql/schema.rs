//! The tables a `.kql` rule can filter, and how their columns map onto
//! trawl's events.
//!
//! Column names and meanings are Microsoft's: the advanced hunting schema of
//! Microsoft 365 Defender (`DeviceProcessEvents`, `DeviceFileEvents`) and
//! Microsoft Sentinel's `SecurityEvent` (process creation, event 4688). A
//! column is read from a Sysmon-named field, derived from one
//! ([`Derived`]: the file name of a path, a digest of `Hashes`, a part of
//! `DOMAIN\user`, the host, the action type), or is a constant of the table.
//! A column not listed here is one trawl's events cannot fill (`DeviceId`,
//! `ReportId`, `InitiatingProcessSHA256`, …); a rule that names one is
//! reported, never silently run against an empty value.

use crate::derived::Derived;
use crate::event::{fields, EventKind, FieldKey, Os};
use crate::ioc::HashAlgo;

/// A column's type, as Kusto types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    String,
    Long,
}

/// Where a column's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A trawl field.
    Field(FieldKey),
    /// A value derived from the event.
    Derived(Derived),
    /// The same number on every row trawl produces for the table
    /// (`SecurityEvent.EventID` is 4688).
    Const(i64),
    /// The event time (`Timestamp`, `TimeGenerated`): only `> ago(…)` as a
    /// whole condition is accepted, and ignored.
    Time,
}

/// One column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColType,
    pub source: Source,
}

/// One table.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: &'static str,
    /// The event kinds its rows are.
    pub kinds: &'static [EventKind],
    /// `None`: events of either OS.
    pub os: Option<Os>,
    pub columns: Vec<Column>,
}

impl Table {
    /// A column by its exact (case-sensitive) name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The names of its columns, for error messages.
    pub fn column_names(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
        names.join(", ")
    }
}

fn s(name: &'static str, source: Source) -> Column {
    Column {
        name,
        ty: ColType::String,
        source,
    }
}

fn long(name: &'static str, key: FieldKey) -> Column {
    Column {
        name,
        ty: ColType::Long,
        source: Source::Field(key),
    }
}

fn field(name: &'static str, key: FieldKey) -> Column {
    s(name, Source::Field(key))
}

fn derived(name: &'static str, d: Derived) -> Column {
    s(name, Source::Derived(d))
}

fn hashes() -> [Column; 3] {
    [
        derived("SHA256", Derived::Hash(HashAlgo::Sha256)),
        derived("SHA1", Derived::Hash(HashAlgo::Sha1)),
        derived("MD5", Derived::Hash(HashAlgo::Md5)),
    ]
}

fn time(name: &'static str) -> Column {
    Column {
        name,
        ty: ColType::Long,
        source: Source::Time,
    }
}

/// Columns of the process that did something, as `DeviceFileEvents` names
/// them (`InitiatingProcess…`), read from the event's own `Image`, `User`, ….
fn initiating(image: FieldKey, cmd: FieldKey, pid: FieldKey, user: FieldKey) -> Vec<Column> {
    vec![
        derived(
            "InitiatingProcessFileName",
            Derived::FileName(image.clone()),
        ),
        field("InitiatingProcessFolderPath", image),
        field("InitiatingProcessCommandLine", cmd),
        long("InitiatingProcessId", pid),
        derived(
            "InitiatingProcessAccountName",
            Derived::AccountName(user.clone()),
        ),
        derived(
            "InitiatingProcessAccountDomain",
            Derived::AccountDomain(user),
        ),
    ]
}

/// `DeviceProcessEvents`: process starts, of either OS.
fn device_process_events() -> Table {
    let mut columns = vec![
        derived("FileName", Derived::FileName(fields::IMAGE)),
        field("FolderPath", fields::IMAGE),
        field("ProcessCommandLine", fields::COMMAND_LINE),
        field(
            "ProcessVersionInfoOriginalFileName",
            fields::ORIGINAL_FILE_NAME,
        ),
        field(
            "ProcessVersionInfoCompanyName",
            FieldKey::from_name("Company"),
        ),
        field(
            "ProcessVersionInfoProductName",
            FieldKey::from_name("Product"),
        ),
        field(
            "ProcessVersionInfoFileDescription",
            FieldKey::from_name("Description"),
        ),
        field(
            "ProcessIntegrityLevel",
            FieldKey::from_name("IntegrityLevel"),
        ),
        long("ProcessId", fields::PROCESS_ID),
        derived("AccountName", Derived::AccountName(fields::USER)),
        derived("AccountDomain", Derived::AccountDomain(fields::USER)),
        derived("DeviceName", Derived::Host),
        derived("ActionType", Derived::ActionType),
        time("Timestamp"),
        time("TimeGenerated"),
    ];
    columns.extend(hashes());
    columns.extend(initiating(
        fields::PARENT_IMAGE,
        fields::PARENT_COMMAND_LINE,
        fields::PARENT_PROCESS_ID,
        FieldKey::from_name("ParentUser"),
    ));
    Table {
        name: "DeviceProcessEvents",
        kinds: &[EventKind::ProcessStart],
        os: None,
        columns,
    }
}

/// `DeviceFileEvents`: file creations, writes, renames and deletions.
fn device_file_events() -> Table {
    let mut columns = vec![
        derived("FileName", Derived::FileName(fields::TARGET_FILENAME)),
        field("FolderPath", fields::TARGET_FILENAME),
        derived(
            "PreviousFileName",
            Derived::FileName(fields::SOURCE_FILENAME),
        ),
        field("PreviousFolderPath", fields::SOURCE_FILENAME),
        derived("ActionType", Derived::ActionType),
        derived("DeviceName", Derived::Host),
        time("Timestamp"),
        time("TimeGenerated"),
    ];
    columns.extend(hashes());
    columns.extend(initiating(
        fields::IMAGE,
        fields::COMMAND_LINE,
        fields::PROCESS_ID,
        fields::USER,
    ));
    Table {
        name: "DeviceFileEvents",
        kinds: &[
            EventKind::FileCreate,
            EventKind::FileWrite,
            EventKind::FileRename,
            EventKind::FileDelete,
        ],
        os: None,
        columns,
    }
}

/// `SecurityEvent`, as far as trawl has its rows: process creation (4688),
/// from Windows process starts.
fn security_event() -> Table {
    Table {
        name: "SecurityEvent",
        kinds: &[EventKind::ProcessStart],
        os: Some(Os::Windows),
        columns: vec![
            Column {
                name: "EventID",
                ty: ColType::Long,
                source: Source::Const(4688),
            },
            field("CommandLine", fields::COMMAND_LINE),
            field("NewProcessName", fields::IMAGE),
            derived("Process", Derived::FileName(fields::IMAGE)),
            field("ParentProcessName", fields::PARENT_IMAGE),
            field("Account", fields::USER),
            derived("Computer", Derived::Host),
            field(
                "TokenElevationType",
                FieldKey::from_name("TokenElevationType"),
            ),
            field("MandatoryLabel", FieldKey::from_name("MandatoryLabel")),
            time("TimeGenerated"),
        ],
    }
}

/// The table of that name, if trawl has it.
pub fn table(name: &str) -> Option<Table> {
    match name {
        "DeviceProcessEvents" => Some(device_process_events()),
        "DeviceFileEvents" => Some(device_file_events()),
        "SecurityEvent" => Some(security_event()),
        _ => None,
    }
}

/// The names of the tables trawl has.
pub const TABLES: &[&str] = &["DeviceProcessEvents", "DeviceFileEvents", "SecurityEvent"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_resolves_and_has_distinct_columns() {
        for name in TABLES {
            let t = table(name).unwrap();
            assert_eq!(t.name, *name);
            let mut names: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
            names.sort_unstable();
            let n = names.len();
            names.dedup();
            assert_eq!(names.len(), n, "{name} repeats a column");
        }
        assert!(table("SigninLogs").is_none());
        assert!(
            table("deviceprocessevents").is_none(),
            "names are case-sensitive"
        );
    }
}
