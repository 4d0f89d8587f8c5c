//! ETW property sets → [`trawl_engine::event::Event`]s, with the state that takes:
//! the start joiner, the process table, the device map and the account names.
//!
//! The Windows glue hands every parsed record to [`Converter::on_record`]
//! and calls [`Converter::tick`] now and then (so lone halves are released on
//! time even when no other event arrives). Field names and kinds are the ones
//! the replay side uses (Sysmon's), so a rule that matches a replayed trace
//! matches the live events of the same activity.
//!
//! ```
//! use std::time::Instant;
//! use trawl_sensor::etw::convert::{Converter, ConverterConfig};
//! use trawl_sensor::etw::device_map::DeviceMap;
//! use trawl_sensor::etw::sid::AccountNames;
//!
//! let mut conv = Converter::new(
//!     ConverterConfig::default(),
//!     DeviceMap::new([("C:", r"\Device\HarddiskVolume3")], r"C:\Windows"),
//!     AccountNames::well_known_only(),
//! );
//! let mut events = Vec::new();
//! conv.tick(Instant::now(), &mut |e| events.push(e));
//! assert!(events.is_empty());
//! ```

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use trawl_engine::event::{fields, Event, EventKind, FieldKey, Os, Timestamp, Value};

use super::device_map::{DeviceMap, Translation};
use super::join::{JoinStats, JoinedStart, LateHalf, Offer, StartJoiner};
use super::process_table::{ProcessInfo, ProcessTable, SnapshotProcess, TableStats};
use super::props::*;
use super::sid::{integrity_level, AccountNames};

const INTEGRITY_LEVEL: FieldKey = FieldKey::known(12);
const TERMINAL_SESSION_ID: FieldKey = FieldKey::known(21);

/// How the converter holds state.
#[derive(Debug, Clone)]
pub struct ConverterConfig {
    /// How long a start half waits for its partner. The two sessions flush
    /// their buffers every second, so a few seconds covers their skew.
    pub join_timeout: Duration,
    /// At most this many start halves wait at once.
    pub join_capacity: usize,
    /// At most this many processes in the table.
    pub table_capacity: usize,
    /// How long an exited process stays in the table for late lookups.
    pub exited_retention: Duration,
    /// The machine name stamped on every event (`None`: no `host`).
    pub host: Option<Arc<str>>,
}

impl Default for ConverterConfig {
    fn default() -> ConverterConfig {
        ConverterConfig {
            join_timeout: Duration::from_secs(3),
            join_capacity: 4096,
            table_capacity: 65_536,
            exited_retention: Duration::from_secs(120),
            host: None,
        }
    }
}

/// What the converter did, for the sensor's stats line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConvertStats {
    /// Records read, of every shape.
    pub records: u64,
    /// Events produced, by kind.
    pub process_starts: u64,
    pub process_exits: u64,
    pub file_creates: u64,
    /// Paths on a device no drive letter stands for, kept as device paths.
    pub unmapped_paths: u64,
    /// Records whose timestamp could not be read (stamped with the time of
    /// conversion instead).
    pub bad_timestamps: u64,
    /// Starts whose parent the table did not know (no `ParentImage`).
    pub parents_unknown: u64,
    /// File events whose process the table did not know (no `Image`).
    pub images_unknown: u64,
    /// Kernel-File creates of directories, passed over (Sysmon reports files).
    pub directories_skipped: u64,
    /// Kernel-File event 12 opens that created nothing, passed over.
    pub opens_skipped: u64,
    /// Event 12 and event 30 for the same create, reported once.
    pub duplicate_creates: u64,
    pub join: JoinStats,
    pub table: TableStats,
}

/// Turns property sets into events; single-threaded (the glue serializes).
#[derive(Debug)]
pub struct Converter {
    config: ConverterConfig,
    devices: DeviceMap,
    users: AccountNames,
    table: ProcessTable,
    joiner: StartJoiner,
    recent_creates: RecentCreates,
    released: Vec<JoinedStart>,
    stats: ConvertStats,
}

impl Converter {
    /// A converter that maps paths with `devices` and names users with `users`.
    pub fn new(config: ConverterConfig, devices: DeviceMap, users: AccountNames) -> Converter {
        Converter {
            table: ProcessTable::new(config.table_capacity, config.exited_retention),
            joiner: StartJoiner::new(config.join_timeout, config.join_capacity),
            config,
            devices,
            users,
            recent_creates: RecentCreates::default(),
            released: Vec::new(),
            stats: ConvertStats::default(),
        }
    }

    /// Adds the processes running at start-up to the table.
    pub fn seed(&mut self, snapshot: impl IntoIterator<Item = SnapshotProcess>) {
        self.table.seed(snapshot);
    }

    /// Replaces the device map (a volume was mounted since start).
    pub fn set_devices(&mut self, devices: DeviceMap) {
        self.devices = devices;
    }

    /// How many paths could not be mapped so far: the glue rebuilds the
    /// device map when this grows.
    pub fn unmapped_paths(&self) -> u64 {
        self.stats.unmapped_paths
    }

    /// Converts one record; what it completes goes to `emit`.
    pub fn on_record(&mut self, record: EtwRecord, now: Instant, emit: &mut dyn FnMut(Event)) {
        self.stats.records += 1;
        match record {
            EtwRecord::MofProcess(m) => self.on_mof(m, now),
            EtwRecord::ProcessStart(k) => {
                let offer = self.joiner.offer_kernel(k, now, &mut self.released);
                self.after_offer(offer);
            }
            EtwRecord::ProcessStop(s) => {
                if let Some(stop) = self.joiner.offer_stop(s) {
                    self.emit_stop(&stop, now, emit);
                }
            }
            EtwRecord::FileCreate(f) => self.on_file_create(f, emit),
        }
        self.flush_released(now, emit);
    }

    /// Releases start halves that waited too long and purges exited
    /// processes; call about once a second.
    pub fn tick(&mut self, now: Instant, emit: &mut dyn FnMut(Event)) {
        self.joiner.expire(now, &mut self.released);
        self.flush_released(now, emit);
        self.table.purge(now);
    }

    /// Releases every pending half (the session is stopping).
    pub fn drain(&mut self, now: Instant, emit: &mut dyn FnMut(Event)) {
        self.joiner.drain(now, &mut self.released);
        self.flush_released(now, emit);
    }

    /// The counters so far.
    pub fn stats(&self) -> ConvertStats {
        ConvertStats {
            join: self.joiner.stats(),
            table: self.table.stats(),
            ..self.stats
        }
    }

    fn on_mof(&mut self, m: MofProcess, now: Instant) {
        match m.opcode {
            MofProcessOpcode::Start => {
                let offer = self.joiner.offer_mof(m, now, &mut self.released);
                self.after_offer(offer);
            }
            MofProcessOpcode::DcStart => {
                // Rundown of a process already running: table only.
                let image = self.image_from_mof(&m);
                let user = m.user_sid.as_deref().map(|s| self.users.name(s));
                let info = ProcessInfo::new(
                    Some(Arc::from(image)),
                    Some(Arc::from(m.command_line)),
                    user,
                );
                self.table.merge(m.process_id, info);
            }
            // Stops come from Kernel-Process event 2 (one source, no doubles).
            MofProcessOpcode::End | MofProcessOpcode::DcEnd => {}
        }
    }

    fn after_offer(&mut self, offer: Offer) {
        match offer {
            Offer::Pending => {}
            Offer::Joined(start) => self.released.push(start),
            Offer::Late(LateHalf::Kernel(k)) => {
                let image = self.map_path(&k.image_name).into_owned();
                self.table.set_image(k.process_id, Arc::from(image));
            }
            Offer::Late(LateHalf::Mof(m)) => {
                let user = m.user_sid.as_deref().map(|s| self.users.name(s));
                self.table.merge(
                    m.process_id,
                    ProcessInfo::new(None, Some(Arc::from(m.command_line)), user),
                );
            }
        }
    }

    fn flush_released(&mut self, now: Instant, emit: &mut dyn FnMut(Event)) {
        let released = std::mem::take(&mut self.released);
        for start in released {
            self.emit_start(&start, emit);
            if let Some(stop) = &start.stop {
                self.emit_stop(stop, now, emit);
            }
        }
    }

    fn emit_start(&mut self, start: &JoinedStart, emit: &mut dyn FnMut(Event)) {
        let ts = [
            start.mof.as_ref().map(|m| m.header.timestamp),
            start.kernel.as_ref().map(|k| k.header.timestamp),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(0);
        let mut ev = self.event(EventKind::ProcessStart, ts);
        let pid = start.process_id();
        let (ppid, session) = match (&start.mof, &start.kernel) {
            (Some(m), _) => (m.parent_id, m.session_id),
            (None, Some(k)) => (k.parent_process_id, k.session_id),
            (None, None) => return,
        };
        let image: Arc<str> = match (&start.kernel, &start.mof) {
            (Some(k), _) => Arc::from(self.map_path(&k.image_name).into_owned()),
            (None, Some(m)) => Arc::from(self.image_from_mof(m)),
            (None, None) => return,
        };
        let command_line = start
            .mof
            .as_ref()
            .map(|m| Arc::<str>::from(&*m.command_line));
        let user = start
            .mof
            .as_ref()
            .and_then(|m| m.user_sid.as_deref())
            .map(|s| self.users.name(s));
        let (parent_image, parent_command_line) = self.process_names(ppid);
        if parent_image.is_none() {
            self.stats.parents_unknown += 1;
        }

        ev.push_unchecked(fields::PROCESS_ID, Value::Int(i64::from(pid)));
        ev.push_unchecked(fields::PARENT_PROCESS_ID, Value::Int(i64::from(ppid)));
        ev.push_unchecked(fields::IMAGE, Value::from(&*image));
        if let Some(cmd) = &command_line {
            ev.push_unchecked(fields::COMMAND_LINE, Value::from(&**cmd));
        }
        if let Some(user) = &user {
            ev.push_unchecked(fields::USER, Value::from(&**user));
        }
        if let Some(level) = start
            .kernel
            .as_ref()
            .and_then(|k| k.mandatory_label.as_deref())
            .and_then(integrity_level)
        {
            ev.push_unchecked(INTEGRITY_LEVEL, Value::from(level));
        }
        ev.push_unchecked(TERMINAL_SESSION_ID, Value::Int(i64::from(session)));
        if let Some(p) = &parent_image {
            ev.push_unchecked(fields::PARENT_IMAGE, Value::from(&**p));
        }
        if let Some(p) = &parent_command_line {
            ev.push_unchecked(fields::PARENT_COMMAND_LINE, Value::from(&**p));
        }
        self.table
            .insert(pid, ProcessInfo::new(Some(image), command_line, user));
        self.stats.process_starts += 1;
        emit(ev);
    }

    fn emit_stop(&mut self, stop: &KernelProcessStop, now: Instant, emit: &mut dyn FnMut(Event)) {
        let mut ev = self.event(EventKind::ProcessExit, stop.header.timestamp);
        ev.push_unchecked(fields::PROCESS_ID, Value::Int(i64::from(stop.process_id)));
        let known = self.table.get(stop.process_id);
        let image = known
            .and_then(|p| p.image.as_deref())
            .unwrap_or(&stop.image_name);
        ev.push_unchecked(fields::IMAGE, Value::from(image));
        if let Some(user) = known.and_then(|p| p.user.as_deref()) {
            ev.push_unchecked(fields::USER, Value::from(user));
        }
        self.table.mark_exited(stop.process_id, now);
        self.stats.process_exits += 1;
        emit(ev);
    }

    fn on_file_create(&mut self, f: KernelFileCreate, emit: &mut dyn FnMut(Event)) {
        if f.is_directory() {
            self.stats.directories_skipped += 1;
            return;
        }
        if f.event == FileCreateEvent::Create && !f.overwrites() {
            self.stats.opens_skipped += 1;
            return;
        }
        if !self.recent_creates.first_time(f.file_object, &f.file_name) {
            self.stats.duplicate_creates += 1;
            return;
        }
        let mut ev = self.event(EventKind::FileCreate, f.header.timestamp);
        let pid = f.header.process_id;
        let (image, _) = self.process_names(pid);
        let user = self.table.get(pid).and_then(|p| p.user.clone());
        let target = self.map_path(&f.file_name).into_owned();
        ev.push_unchecked(fields::PROCESS_ID, Value::Int(i64::from(pid)));
        match image {
            Some(image) => ev.push_unchecked(fields::IMAGE, Value::from(&*image)),
            None => self.stats.images_unknown += 1,
        }
        ev.push_unchecked(fields::TARGET_FILENAME, Value::from(target));
        if let Some(user) = user {
            ev.push_unchecked(fields::USER, Value::from(&*user));
        }
        self.stats.file_creates += 1;
        emit(ev);
    }

    /// Image and command line of `pid` from the table, or from a start of it
    /// that is still waiting for its partner.
    fn process_names(&mut self, pid: u32) -> (Option<Arc<str>>, Option<Arc<str>>) {
        if let Some(p) = self.table.get(pid) {
            return (p.image.clone(), p.command_line.clone());
        }
        let Some((mof, kernel)) = self.joiner.pending(pid) else {
            return (None, None);
        };
        let (mof, kernel) = (mof.cloned(), kernel.cloned());
        let image = match (&kernel, &mof) {
            (Some(k), _) => Some(self.map_path(&k.image_name).into_owned()),
            (None, Some(m)) => Some(self.image_from_mof(m)),
            (None, None) => None,
        };
        (image.map(Arc::from), mof.map(|m| Arc::from(m.command_line)))
    }

    /// The best image path a MOF record alone gives: the command line's
    /// program when it is a path to the named image, else the bare name.
    fn image_from_mof(&mut self, m: &MofProcess) -> String {
        match program_path(&m.command_line, &m.image_file_name) {
            Some(path) => self.map_path(path).into_owned(),
            None => m.image_file_name.clone(),
        }
    }

    fn map_path<'a>(&mut self, path: &'a str) -> Cow<'a, str> {
        match self.devices.translate(path) {
            Translation::Mapped(p) => p,
            Translation::Unmapped(p) => {
                self.stats.unmapped_paths += 1;
                Cow::Borrowed(p)
            }
        }
    }

    fn event(&mut self, kind: EventKind, filetime: i64) -> Event {
        let ts = filetime_to_timestamp(filetime).unwrap_or_else(|| {
            self.stats.bad_timestamps += 1;
            Timestamp::now()
        });
        let mut ev = Event::new(kind, Os::Windows, ts);
        ev.host = self.config.host.clone();
        ev
    }
}

/// The program a command line runs, when it is written as a path (absolute,
/// or in an NT form the device map rewrites) whose file name is `image_name`.
fn program_path<'a>(command_line: &'a str, image_name: &str) -> Option<&'a str> {
    let line = command_line.trim_start();
    let program = match line.strip_prefix('"') {
        Some(rest) => rest.split('"').next()?,
        None => line.split([' ', '\t']).next()?,
    };
    let is_path = program.starts_with('\\') || program.get(1..3) == Some(":\\");
    let name = program.rsplit('\\').next()?;
    (is_path && !image_name.is_empty() && name.eq_ignore_ascii_case(image_name)).then_some(program)
}

/// The last few creates reported, so event 12 and event 30 of one create
/// (same file object, same name) give one event.
#[derive(Debug)]
struct RecentCreates {
    ring: Vec<(u64, u64)>,
    next: usize,
}

impl Default for RecentCreates {
    fn default() -> RecentCreates {
        RecentCreates {
            ring: vec![(u64::MAX, u64::MAX); 64],
            next: 0,
        }
    }
}

impl RecentCreates {
    fn first_time(&mut self, file_object: u64, name: &str) -> bool {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        let key = (file_object, h.finish());
        if self.ring.contains(&key) {
            return false;
        }
        self.ring[self.next] = key;
        self.next = (self.next + 1) % self.ring.len();
        true
    }
}

#[cfg(test)]
mod tests;
