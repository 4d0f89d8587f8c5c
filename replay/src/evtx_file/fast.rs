//! Reading a chunk's records straight from their template substitution
//! values: the record's template has a plan ([`super::template`]) of where
//! `Channel`, `EventID`, the other `System` fields and each `Data` value
//! sit, so a record is read by looking up a handful of values, and a record
//! of a channel trawl does not map costs only its `System` lookups.
//!
//! Nothing here reports a problem: a chunk this reader cannot read in full
//! (a damaged record, a template or value shape it does not cover) is handed
//! back whole to the `evtx` crate's renderer, which reads and reports it as
//! before. Both readers give the same events (see the tests in
//! `tests/winlog_e2e.rs`, which compare them over real logs).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use evtx::{EvtxChunkHeader, EvtxRecordHeader};
use trawl_engine::event::FieldKey;

use super::bytes::Cursor;
use super::strings;
use super::template::{DataSlot, EventData, NoPlan, Plan, PlanCache, Root, Slot, Src};
use super::values::{is_empty, is_known_type, reads_alone, render, Val, BINXML};
use crate::unit::UnitOutput;
use crate::winlog::mapping::{is_mapped, map_fields, DataName, Head, Mapped};
use crate::winlog::record::DataValue;
use crate::winlog::ChannelCounts;
use crate::Location;

/// Why a chunk goes to the crate's renderer.
pub(super) type Fallback = &'static str;

/// The bytes of a chunk header, where its first record starts.
const CHUNK_HEADER: usize = 512;
/// The bytes of a record header (magic, size, id, time).
const RECORD_HEADER: usize = 24;

/// One substitution value: its type and bytes.
type Value<'a> = (u8, &'a [u8]);

thread_local! {
    /// Each reading thread's plans and text buffers, kept from chunk to
    /// chunk and file to file: most sample logs hold a few records per
    /// chunk, so buffers made per chunk were regrown per chunk.
    static READER: RefCell<(Plans, Texts)> = RefCell::default();
}

/// Reads every record of the chunk `data` (with its parsed `header`) into
/// `out` and `counts`, or says why the chunk must go to the crate instead
/// (then `out` holds part of it, which the caller rolls back).
pub(super) fn read_chunk(
    data: &[u8],
    header: &EvtxChunkHeader,
    counts: &mut ChannelCounts,
    out: &mut UnitOutput,
) -> Result<(), Fallback> {
    READER.with_borrow_mut(|(plans, text)| {
        plans.start_chunk();
        read_records(data, header, plans, text, counts, out)
    })
}

fn read_records(
    data: &[u8],
    data_header: &EvtxChunkHeader,
    plans: &mut Plans,
    text: &mut Texts,
    counts: &mut ChannelCounts,
    out: &mut UnitOutput,
) -> Result<(), Fallback> {
    // The crate checks the chunk's string table when it opens the chunk: a
    // chunk it rejects is rejected, and reported, by the crate's path alike.
    if !strings::table_ok(data, &mut plans.seen) {
        return Err("the chunk's string table");
    }
    let bytes = data;
    let live_end = (data_header.free_space_offset as usize).min(bytes.len());
    let mut values: Vec<Value<'_>> = Vec::with_capacity(64);
    let mut embedded: Vec<Value<'_>> = Vec::with_capacity(64);
    let mut host = None;
    let mut offset = CHUNK_HEADER;
    while offset < live_end {
        let header =
            EvtxRecordHeader::from_bytes_at(bytes, offset).map_err(|_| "a record header")?;
        let size = header.record_data_size().map_err(|_| "a record size")? as usize;
        let start = offset + RECORD_HEADER;
        let binxml = bytes
            .get(start..start + size)
            .ok_or("a record out of bounds")?;
        let id = header.event_record_id;
        let def = instance(binxml, start, &mut values)?;
        let plan = plans.plan(bytes, def, Root::Event)?;
        out.records += 1;
        let record = Record {
            plan: &plan,
            values: &values,
            header_id: id,
        };
        read_record(
            record,
            bytes,
            plans,
            &mut embedded,
            text,
            &mut host,
            counts,
            out,
        )?;
        if id == data_header.last_event_record_id {
            return Ok(());
        }
        offset += header.data_size as usize;
    }
    // The walk ended short of the last record the header names: the
    // renderer's walk says how many are missing.
    Err("the walk ended before the chunk's last record")
}

/// The plans of the current chunk's templates, by definition offset and
/// what they are the template of, found in or added to `cache`.
#[derive(Default)]
struct Plans {
    chunk: strings::OffsetMap<(u32, Root), Result<Rc<Plan>, NoPlan>>,
    cache: PlanCache,
    /// Scratch space for the string-table check.
    seen: strings::Seen,
}

impl Plans {
    fn start_chunk(&mut self) {
        self.chunk.clear();
    }

    fn plan(&mut self, chunk: &[u8], def: u32, root: Root) -> Result<Rc<Plan>, Fallback> {
        let cache = &mut self.cache;
        self.chunk
            .entry((def, root))
            .or_insert_with(|| cache.plan(chunk, def, root))
            .clone()
    }
}

/// One record: its template's plan and its values.
struct Record<'r, 'a> {
    plan: &'r Plan,
    values: &'r [Value<'a>],
    header_id: u64,
}

/// Reads a record's template instance: its values into `values`, and the
/// offset of its template definition.
fn instance<'a>(
    binxml: &'a [u8],
    start: usize,
    values: &mut Vec<Value<'a>>,
) -> Result<u32, Fallback> {
    let mut c = Cursor::at(binxml, 0);
    if binxml.first() == Some(&0x0f) {
        c.skip(4);
    }
    let fail = "not one template instance";
    if c.u8() != Some(0x0c) {
        return Err(fail);
    }
    c.skip(5).ok_or(fail)?;
    let def = c.u32().ok_or(fail)?;
    if start + c.pos() == def as usize {
        // The definition is written here, in its first record: skip it.
        c.skip(20).ok_or(fail)?;
        let size = c.u32().ok_or(fail)? as usize;
        c.skip(size).ok_or(fail)?;
    }
    let n = c.u32().ok_or(fail)? as usize;
    let descriptors = c.take(n.checked_mul(4).ok_or(fail)?).ok_or(fail)?;
    let descriptors = descriptors.as_chunks::<4>().0;
    values.clear();
    values.reserve(descriptors.len());
    let mut rest = c.rest();
    for d in descriptors {
        if !is_known_type(d[2]) {
            return Err("a value of an unknown type");
        }
        let size = usize::from(u16::from_le_bytes([d[0], d[1]]));
        let (bytes, after) = rest.split_at_checked(size).ok_or(fail)?;
        rest = after;
        if !reads_alone(d[2], bytes) {
            return Err("a value its size does not hold");
        }
        values.push((d[2], bytes));
    }
    match rest {
        [] | [0, ..] => Ok(def),
        _ => Err("content after the template instance"),
    }
}

/// Reusable text buffers, so records of unmapped channels allocate nothing.
/// What they keep is checked against the bytes it was read from, so they
/// carry over from chunk to chunk.
#[derive(Default)]
struct Texts {
    provider: Kept,
    channel: Kept,
    time: String,
    computer: Kept,
    scratch: String,
}

/// A `System` text that most records of a chunk repeat (provider, channel,
/// computer): the substitution value it was last rendered from is kept, and
/// the same value is not decoded again.
#[derive(Default)]
struct Kept {
    text: String,
    /// The value `text` was rendered from (type, bytes), when `kept`.
    from: (u8, Vec<u8>),
    kept: bool,
}

impl Kept {
    /// [`system_text`], skipping the render of the value last rendered.
    fn get(&mut self, slot: Option<&Slot>, values: &[Value<'_>]) -> Result<Option<&str>, Fallback> {
        let value = slot.and_then(|s| rendered_value(s, values));
        if let Some((t, b)) = value {
            if self.kept && t == self.from.0 && b == &self.from.1[..] {
                return Ok(Some(&self.text));
            }
        }
        self.kept = false;
        let Some(text) = system_text(slot, values, &mut self.text)? else {
            return Ok(None);
        };
        if let Some((t, b)) = value {
            self.from.0 = t;
            self.from.1.clear();
            self.from.1.extend_from_slice(b);
            self.kept = true;
        }
        Ok(Some(text))
    }
}

/// The substitution value [`resolve`] renders for `slot`, if it renders one.
fn rendered_value<'a>(slot: &Slot, values: &[Value<'a>]) -> Option<Value<'a>> {
    let left_out =
        (slot.deps.iter()).any(|&d| values.get(usize::from(d)).is_some_and(|v| v.0 == 0));
    match slot.src {
        Some(Src::Sub { id, optional }) if !left_out => {
            let &(t, b) = values.get(usize::from(id))?;
            (!(optional && is_empty(t, b))).then_some((t, b))
        }
        _ => None,
    }
}

/// A value read for a slot: absent (left out, or empty), or rendered.
fn resolve(slot: &Slot, values: &[Value<'_>], buf: &mut String) -> Result<Option<Val>, Fallback> {
    if slot
        .deps
        .iter()
        .any(|&d| values.get(usize::from(d)).is_some_and(|v| v.0 == 0))
    {
        return Ok(None);
    }
    match &slot.src {
        None => Ok(None),
        Some(Src::Text(t)) => {
            buf.clear();
            buf.push_str(t);
            Ok(Some(Val::Text))
        }
        &Some(Src::Sub { id, optional }) => {
            let Some(&(t, b)) = values.get(usize::from(id)) else {
                return Ok(None);
            };
            if optional && is_empty(t, b) {
                return Ok(None);
            }
            render(t, b, buf)
                .map(Some)
                .ok_or("a value type left to the crate")
        }
    }
}

/// A `System` text field: `None` when absent, empty or not text.
fn system_text<'b>(
    slot: Option<&Slot>,
    values: &[Value<'_>],
    buf: &'b mut String,
) -> Result<Option<&'b str>, Fallback> {
    let Some(slot) = slot else { return Ok(None) };
    Ok(match resolve(slot, values, buf)? {
        Some(Val::Text) if !buf.is_empty() => Some(buf.as_str()),
        _ => None,
    })
}

/// A `System` number field, as the JSON reader reads it (a number, or
/// decimal or `0x` hex text).
fn system_number(
    slot: Option<&Slot>,
    values: &[Value<'_>],
    buf: &mut String,
) -> Result<Option<u64>, Fallback> {
    let Some(slot) = slot else { return Ok(None) };
    Ok(match resolve(slot, values, buf)? {
        Some(Val::Int(i)) => u64::try_from(i).ok(),
        Some(Val::BigUint(u)) => Some(u),
        Some(Val::Text) => {
            let t = buf.trim();
            match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => t.parse().ok(),
            }
        }
        _ => None,
    })
}

#[allow(clippy::too_many_arguments)]
fn read_record<'a>(
    record: Record<'_, 'a>,
    chunk: &'a [u8],
    plans: &mut Plans,
    embedded: &mut Vec<Value<'a>>,
    text: &mut Texts,
    host: &mut Option<Arc<str>>,
    counts: &mut ChannelCounts,
    out: &mut UnitOutput,
) -> Result<(), Fallback> {
    let Record {
        plan,
        values,
        header_id,
    } = record;
    let provider = text.provider.get(plan.provider.as_ref(), values)?;
    let channel = text.channel.get(plan.channel.as_ref(), values)?;
    let event_id = system_number(plan.event_id.as_ref(), values, &mut text.scratch)?
        .and_then(|v| u32::try_from(v).ok());
    counts.add(channel, provider, event_id);
    // Embedded data is checked in every record, mapped or not, so a damaged
    // one goes to the crate, which reports it. The crate parses every
    // embedded value, so the ones the plan does not read are checked too.
    let embedded_id = plan.embedded.map(usize::from);
    check_other_binxml(values, embedded_id, chunk, plans, embedded)?;
    let inner = match embedded_id.and_then(|id| values.get(id)) {
        Some(&(BINXML, bytes)) if !bytes.is_empty() => {
            let start = bytes.as_ptr() as usize - chunk.as_ptr() as usize;
            let def = instance(bytes, start, embedded)?;
            if embedded.iter().any(|v| v.0 == BINXML && !v.1.is_empty()) {
                return Err("embedded BinXML within embedded data");
            }
            Some(plans.plan(chunk, def, Root::Embedded)?)
        }
        _ => None,
    };
    if !is_mapped(channel.or(provider), event_id) {
        return Ok(());
    }
    let data = match (&plan.event_data, inner.as_deref()) {
        (EventData::Fields(fields), _) => event_data(fields, values, &mut text.scratch)?,
        (EventData::Absent, Some(inner)) => match &inner.event_data {
            EventData::Fields(fields) => event_data(fields, embedded, &mut text.scratch)?,
            _ => return Err("a mapped record whose embedded data is not plain EventData"),
        },
        _ => return Err("a mapped record without plain EventData"),
    };
    let record_id = system_number(plan.record_id.as_ref(), values, &mut text.scratch)?;
    let time = system_text(plan.time_created.as_ref(), values, &mut text.time)?;
    let computer = text.computer.get(plan.computer.as_ref(), values)?;
    let rec = Head {
        provider,
        channel,
        event_id,
        record_id,
        time_created: time,
        computer,
        data_read: true,
    };
    match map_fields(&rec, data, host) {
        Ok(Mapped::Event { seq, event }) => out.event(seq.unwrap_or(header_id), event),
        Ok(Mapped::Other) => {}
        Err(reason) => out.bad(Location::Record(header_id), reason, 1),
    }
    Ok(())
}

/// Checks the embedded BinXML values other than number `read` (which the
/// plan reads) as the crate would parse them: each one template instance
/// whose definition compiles, no deeper embedding. `scratch` is overwritten.
fn check_other_binxml<'a>(
    values: &[Value<'a>],
    read: Option<usize>,
    chunk: &'a [u8],
    plans: &mut Plans,
    scratch: &mut Vec<Value<'a>>,
) -> Result<(), Fallback> {
    for (i, &(t, bytes)) in values.iter().enumerate() {
        if t != BINXML || bytes.is_empty() || Some(i) == read {
            continue;
        }
        let start = bytes.as_ptr() as usize - chunk.as_ptr() as usize;
        let def = instance(bytes, start, scratch)?;
        if scratch.iter().any(|v| v.0 == BINXML && !v.1.is_empty()) {
            return Err("embedded BinXML within embedded data");
        }
        plans.plan(chunk, def, Root::Embedded)?;
    }
    Ok(())
}

/// The `EventData` fields of a mapped record, typed as the JSON reader
/// types them; an empty `Data` reads as empty text, as the crate renders it.
fn event_data<'p>(
    fields: &'p [DataSlot],
    values: &[Value<'_>],
    buf: &mut String,
) -> Result<Vec<(&'p DataSlot, DataValue)>, Fallback> {
    let mut data = Vec::with_capacity(fields.len());
    for field in fields {
        let left_out = field
            .slot
            .deps
            .iter()
            .any(|&d| values.get(usize::from(d)).is_some_and(|v| v.0 == 0));
        if left_out {
            continue;
        }
        let value = match resolve(&field.slot, values, buf)? {
            None | Some(Val::Null) => DataValue::Str(String::new()),
            Some(Val::Text) => DataValue::Str(buf.clone()),
            Some(Val::Int(i)) => DataValue::Int(i),
            Some(Val::BigUint(u)) => DataValue::Str(u.to_string()),
            Some(Val::Bool(b)) => DataValue::Bool(b),
        };
        data.push((field, value));
    }
    Ok(data)
}

impl DataName for &DataSlot {
    // A plan has no two fields of one name.
    const DISTINCT: bool = true;
    fn name(&self) -> &str {
        &self.name
    }
    fn key(&self) -> FieldKey {
        self.key.clone()
    }
}
