//! Template plans: where a chunk's template definition puts the few values
//! trawl reads (the `System` fields and the `EventData` `Data` elements), so
//! a record of that template is read by looking its substitution values up,
//! without building or rendering its XML tree.
//!
//! A plan is compiled once per template definition in a chunk. A template of
//! a shape the plan does not cover (no `Event`/`System` root, `Data` without
//! a literal `Name`, mixed content, nested templates, …) still compiles, and
//! says so: records that need the uncovered part are left to the `evtx`
//! crate's renderer ([`super::fast`]).

use std::ops::Range;
use std::rc::Rc;

use trawl_engine::event::FieldKey;

use super::bytes::Cursor;

/// Where one value comes from: a substitution of the instance, or text
/// written in the template itself.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Src {
    /// The instance's value number `id`; an `optional` one that is empty
    /// leaves its element's content empty.
    Sub { id: u16, optional: bool },
    /// Literal text of the template.
    Text(Box<str>),
}

/// One value trawl reads, and the substitutions whose NULL leaves its
/// element (or an enclosing one) out of the record, as MS-EVEN6 2.2.12 says.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Slot {
    pub(super) src: Option<Src>,
    pub(super) deps: Box<[u16]>,
}

/// One `<Data Name="…">` of `EventData`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DataSlot {
    pub(super) name: Box<str>,
    /// `name` interned once here rather than for every event.
    pub(super) key: FieldKey,
    pub(super) slot: Slot,
}

/// What a template's `EventData` looks like to the plan.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum EventData {
    /// No `EventData` element.
    Absent,
    /// `Data` elements with literal names, in order.
    Fields(Vec<DataSlot>),
    /// A shape the plan does not read (e.g. `Data` without a `Name`).
    Unread,
}

/// The plan of one template definition.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan {
    pub(super) provider: Option<Slot>,
    pub(super) event_id: Option<Slot>,
    pub(super) record_id: Option<Slot>,
    pub(super) time_created: Option<Slot>,
    pub(super) channel: Option<Slot>,
    pub(super) computer: Option<Slot>,
    pub(super) event_data: EventData,
    /// The substitution in `Event`'s content that carries the event's data
    /// as embedded BinXML (most logs write `EventData` so, as a template
    /// instance of its own).
    pub(super) embedded: Option<u16>,
}

/// What a template definition is the template of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Root {
    /// A record: `<Event><System>…</System>…</Event>`.
    Event,
    /// BinXML embedded in a record's value: `<EventData>…</EventData>`
    /// (any other root, such as `UserData`, leaves the data unread).
    Embedded,
}

/// Why a template has no plan at all: its records go to the crate.
pub(super) type NoPlan = &'static str;

/// Bytes of a template definition's header (next offset, GUID, data size).
pub(super) const DEFINITION_HEADER: usize = 24;

/// One piece of an element's content or of an attribute's value.
#[derive(Debug)]
enum Piece {
    Sub { id: u16, optional: bool },
    Text(String),
}

/// An element being read.
#[derive(Default)]
struct Open {
    name: String,
    dependency: Option<u16>,
    attrs: Vec<(String, Vec<Piece>)>,
    content: Vec<Piece>,
    children: bool,
}

/// Compiles the plan of the template defined at `def_offset` in `chunk`.
pub(super) fn compile(chunk: &[u8], def_offset: u32, root: Root) -> Result<Plan, NoPlan> {
    compile_noting(chunk, def_offset, root, &mut Vec::new())
}

/// [`compile`], noting in `names` where in `chunk` each name it read lies
/// (its length and UTF-16 units), the only bytes outside the definition a
/// plan depends on.
fn compile_noting(
    chunk: &[u8],
    def_offset: u32,
    root: Root,
    names: &mut Vec<std::ops::Range<usize>>,
) -> Result<Plan, NoPlan> {
    let start = def_offset as usize;
    let mut header = Cursor::at(chunk, start.checked_add(20).ok_or("bad offset")?);
    let size = header.u32().ok_or("template header out of bounds")? as usize;
    let body = start + DEFINITION_HEADER;
    let end = body.checked_add(size).ok_or("bad size")?;
    if end > chunk.len() {
        return Err("template body out of bounds");
    }
    let mut c = Cursor::at(&chunk[..end], body);
    let mut plan = Plan {
        provider: None,
        event_id: None,
        record_id: None,
        time_created: None,
        channel: None,
        computer: None,
        event_data: EventData::Absent,
        embedded: None,
    };
    let mut stack: Vec<Open> = Vec::new();
    // Closed elements, whose buffers the next ones reuse: a template holds
    // a few dozen elements but nests them only a few deep.
    let mut spare: Vec<Open> = Vec::new();
    if root == Root::Embedded {
        // Embedded data reads as if it stood in its record's `Event`.
        stack.push(Open {
            name: "Event".to_owned(),
            dependency: None,
            attrs: Vec::new(),
            content: Vec::new(),
            children: false,
        });
    }
    let floor = stack.len();
    let mut in_attr = false;
    let mut roots = 0;
    let mut system = false;
    while c.pos() < end {
        let token = c.u8().ok_or("truncated token")?;
        // Text, a substitution or an attribute outside every element is an
        // error to the crate (embedded data stands in an `Event` only here).
        if stack.len() == floor && matches!(token, 0x05 | 0x45 | 0x06 | 0x46 | 0x0d | 0x0e) {
            return Err("a value outside an element");
        }
        match token {
            0x00 => break,
            0x0f => {
                c.skip(3).ok_or("truncated fragment header")?;
            }
            0x01 | 0x41 => {
                let dep = c.u16().ok_or("truncated element")?;
                c.skip(4).ok_or("truncated element")?;
                let mut open = spare.pop().unwrap_or_default();
                name_ref_into(chunk, &mut c, names, &mut open.name)?;
                if token & 0x40 != 0 {
                    c.skip(4).ok_or("truncated attribute list")?;
                }
                if stack.len() == floor {
                    roots += 1;
                }
                if let Some(parent) = stack.last_mut() {
                    parent.children = true;
                }
                open.dependency = (dep != 0xffff).then_some(dep);
                open.attrs.clear();
                open.content.clear();
                open.children = false;
                stack.push(open);
                in_attr = false;
            }
            0x02 => in_attr = false,
            0x03 | 0x04 => {
                in_attr = false;
                if stack.len() == floor {
                    return Err("element end without a start");
                }
                let open = stack.pop().ok_or("element end without a start")?;
                finish(&open, &stack, &mut plan, &mut system)?;
                spare.push(open);
            }
            0x05 | 0x45 => {
                let ty = c.u8().ok_or("truncated value")?;
                if ty != 0x01 {
                    return Err("literal value of a type other than text");
                }
                let n = c.u16().ok_or("truncated text")? as usize;
                let units = c.take(n * 2).ok_or("truncated text")?;
                let mut text = String::new();
                super::values::push_utf16_until_nul(units, &mut text);
                push_piece(&mut stack, in_attr, Piece::Text(text))?;
            }
            0x06 | 0x46 => {
                let name = name_ref(chunk, &mut c, names)?;
                let open = stack.last_mut().ok_or("attribute outside an element")?;
                open.attrs.push((name, Vec::new()));
                in_attr = true;
            }
            0x0d | 0x0e => {
                let id = c.u16().ok_or("truncated substitution")?;
                let ty = c.u8().ok_or("truncated substitution")?;
                if !super::values::is_known_type(ty) {
                    return Err("a substitution of an unknown value type");
                }
                let piece = Piece::Sub {
                    id,
                    optional: token == 0x0e,
                };
                push_piece(&mut stack, in_attr, piece)?;
            }
            _ => return Err("a token the plan does not read"),
        }
    }
    if stack.len() != floor || roots != 1 || (root == Root::Event && !system) {
        return Err("not one `Event` element with a `System` part");
    }
    Ok(plan)
}

fn push_piece(stack: &mut [Open], in_attr: bool, piece: Piece) -> Result<(), NoPlan> {
    let open = stack.last_mut().ok_or("value outside an element")?;
    match (in_attr, open.attrs.last_mut()) {
        (true, Some((_, value))) => value.push(piece),
        _ => open.content.push(piece),
    }
    Ok(())
}

/// Reads a name reference; a name stored right here is skipped over.
fn name_ref(
    chunk: &[u8],
    c: &mut Cursor<'_>,
    names: &mut Vec<std::ops::Range<usize>>,
) -> Result<String, NoPlan> {
    let mut name = String::new();
    name_ref_into(chunk, c, names, &mut name)?;
    Ok(name)
}

/// [`name_ref`] into `name`, replacing what it held.
fn name_ref_into(
    chunk: &[u8],
    c: &mut Cursor<'_>,
    names: &mut Vec<std::ops::Range<usize>>,
    name: &mut String,
) -> Result<(), NoPlan> {
    let offset = c.u32().ok_or("truncated name reference")? as usize;
    let from = offset.checked_add(6).ok_or("bad name offset")?;
    let mut at = Cursor::at(chunk, from);
    let n = at.u16().ok_or("name out of bounds")? as usize;
    let units = at.take(n * 2).ok_or("name out of bounds")?;
    names.push(from..at.pos());
    if offset == c.pos() {
        c.skip(8 + n * 2 + 2).ok_or("truncated inline name")?;
    }
    name.clear();
    super::values::push_utf16_until_nul(units, name);
    Ok(())
}

/// The one source of a value, `None` when empty; an error when mixed.
fn single(pieces: &[Piece]) -> Result<Option<Src>, NoPlan> {
    match pieces {
        [] => Ok(None),
        [Piece::Sub { id, optional }] => Ok(Some(Src::Sub {
            id: *id,
            optional: *optional,
        })),
        [Piece::Text(t)] => Ok(Some(Src::Text(t.as_str().into()))),
        _ => Err("mixed content in a value trawl reads"),
    }
}

fn deps(stack: &[Open], own: Option<u16>) -> Box<[u16]> {
    stack
        .iter()
        .filter_map(|o| o.dependency)
        .chain(own)
        .collect()
}

/// Files a finished element into the plan by where it stands.
fn finish(open: &Open, stack: &[Open], plan: &mut Plan, system: &mut bool) -> Result<(), NoPlan> {
    // Where it stands: its depth and its two outermost ancestors.
    let ancestor = |i: usize| stack.get(i).map(|o| o.name.as_str());
    match (stack.len(), ancestor(0), ancestor(1)) {
        (0, ..) if open.name != "Event" => return Err("the root element is not `Event`"),
        (0, ..) => {
            // `Event`'s own content: one substitution is embedded data.
            let subs: Vec<u16> = (open.content.iter())
                .filter_map(|p| match p {
                    Piece::Sub { id, .. } => Some(*id),
                    Piece::Text(_) => None,
                })
                .collect();
            if let [id] = subs[..] {
                plan.embedded = Some(id);
            }
        }
        (1, Some("Event"), _) if open.name == "System" => *system = true,
        (1, Some("Event"), _) if open.name == "EventData" => {
            // Content beside the `Data` elements, or an `EventData` an
            // instance can leave out, renders in ways the plan does not read.
            if !open.content.is_empty() || open.dependency.is_some() {
                plan.event_data = EventData::Unread;
            } else if plan.event_data == EventData::Absent {
                plan.event_data = EventData::Fields(Vec::new());
            }
        }
        (2, Some("Event"), Some("System")) => {
            let d = deps(stack, open.dependency);
            let attr = |open: &Open, name: &str| -> Result<Option<Slot>, NoPlan> {
                match open.attrs.iter().find(|(n, _)| n == name) {
                    Some((_, v)) => Ok(Some(Slot {
                        src: single(v)?,
                        deps: d.clone(),
                    })),
                    None => Ok(None),
                }
            };
            let content = |open: &Open| -> Result<Option<Slot>, NoPlan> {
                if open.children {
                    return Err("a System field with child elements");
                }
                Ok(Some(Slot {
                    src: single(&open.content)?,
                    deps: d.clone(),
                }))
            };
            match open.name.as_str() {
                "Provider" => plan.provider = attr(open, "Name")?,
                "TimeCreated" => plan.time_created = attr(open, "SystemTime")?,
                "EventID" => plan.event_id = content(open)?,
                "EventRecordID" => plan.record_id = content(open)?,
                "Channel" => plan.channel = content(open)?,
                "Computer" => plan.computer = content(open)?,
                _ => {}
            }
        }
        (2, Some("Event"), Some("EventData")) => {
            let slot = data_slot(open, stack);
            match (&mut plan.event_data, slot) {
                (EventData::Unread, _) => {}
                (ed, None) => *ed = EventData::Unread,
                (EventData::Fields(fields), Some(s)) => {
                    if fields.iter().any(|f| f.name == s.name) {
                        plan.event_data = EventData::Unread;
                    } else {
                        fields.push(s);
                    }
                }
                (ed @ EventData::Absent, Some(s)) => *ed = EventData::Fields(vec![s]),
            }
        }
        (3.., Some("Event"), Some("EventData")) => plan.event_data = EventData::Unread,
        _ => {}
    }
    Ok(())
}

/// A `<Data Name="literal">value</Data>` element, or `None` for any other
/// shape.
fn data_slot(open: &Open, stack: &[Open]) -> Option<DataSlot> {
    let [(attr, value)] = &open.attrs[..] else {
        return None;
    };
    if open.name != "Data" || open.children {
        return None;
    }
    let d = deps(stack, open.dependency);
    let name = match (attr.as_str(), single(value).ok()?) {
        ("Name", Some(Src::Text(n))) if !n.is_empty() => n,
        _ => return None,
    };
    Some(DataSlot {
        key: FieldKey::from_name(&name),
        name,
        slot: Slot {
            src: single(&open.content).ok()?,
            deps: d,
        },
    })
}

/// Plans compiled in earlier chunks, found again by their definitions'
/// bytes: the chunks of a log, and the logs of one machine, use the same few
/// templates, and compiling one costs far more than comparing its bytes.
///
/// A plan depends only on the definition's offset in its chunk (name
/// references are chunk offsets, and a name written in place is told by its
/// offset), its size and body, and the names it reads from elsewhere in the
/// chunk; an entry is used only when all of these are equal, so a plan found
/// here is the one [`compile`] would give. Only plans that compile are kept.
#[derive(Default)]
pub(super) struct PlanCache {
    by_key: super::strings::OffsetMap<Key, Vec<Entry>>,
    entries: usize,
    bytes: usize,
    names: Vec<Range<usize>>,
}

/// Where an entry is looked for (the GUID only narrows the search).
#[derive(PartialEq, Eq, Hash)]
struct Key {
    root: Root,
    def: u32,
    size: u32,
    guid: [u8; 16],
}

struct Entry {
    body: Box<[u8]>,
    /// The names read, as (offset in the chunk, their length and units).
    names: Box<[(usize, Box<[u8]>)]>,
    plan: Rc<Plan>,
}

/// Bounds on what the cache holds; past either it starts over.
const MAX_ENTRIES: usize = 4096;
const MAX_BYTES: usize = 16 << 20;

impl PlanCache {
    /// The plan of the template defined at `def` in `chunk`: a cached one
    /// when an equal definition was compiled before, else compiled now.
    pub(super) fn plan(&mut self, chunk: &[u8], def: u32, root: Root) -> Result<Rc<Plan>, NoPlan> {
        let Some((key, body)) = key_of(chunk, def, root) else {
            return compile(chunk, def, root).map(Rc::new);
        };
        let equal = |e: &&Entry| {
            *e.body == *body
                && e.names.iter().all(|(at, bytes)| {
                    chunk
                        .get(*at..at + bytes.len())
                        .is_some_and(|b| same(b, bytes))
                })
        };
        if let Some(found) = self.by_key.get(&key).and_then(|v| v.iter().find(equal)) {
            return Ok(Rc::clone(&found.plan));
        }
        self.names.clear();
        let plan = Rc::new(compile_noting(chunk, def, root, &mut self.names)?);
        let names: Box<[(usize, Box<[u8]>)]> = (self.names.iter())
            .map(|r| (r.start, chunk[r.clone()].into()))
            .collect();
        // The plan's own size is of the order of its body's.
        let cost = 2 * body.len() + names.iter().map(|(_, b)| b.len() + 32).sum::<usize>() + 256;
        if self.entries >= MAX_ENTRIES || self.bytes + cost > MAX_BYTES {
            self.by_key.clear();
            (self.entries, self.bytes) = (0, 0);
        }
        self.entries += 1;
        self.bytes += cost;
        self.by_key.entry(key).or_default().push(Entry {
            body: body.into(),
            names,
            plan: Rc::clone(&plan),
        });
        Ok(plan)
    }
}

/// `a == b` for the short names a plan reads, inline: confirming a cached
/// plan compares a few dozen of them per template per chunk, and a call to
/// `memcmp` each cost more than the comparisons.
fn same(a: &[u8], b: &[u8]) -> bool {
    let ((aw, at), (bw, bt)) = (a.as_chunks::<8>(), b.as_chunks::<8>());
    a.len() == b.len()
        && aw
            .iter()
            .zip(bw)
            .all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
        && at.iter().zip(bt).all(|(x, y)| x == y)
}

/// The cache key of the definition at `def`, and its body; `None` when the
/// definition does not lie within the chunk (then it does not compile).
fn key_of(chunk: &[u8], def: u32, root: Root) -> Option<(Key, &[u8])> {
    let start = def as usize;
    let guid = chunk.get(start.checked_add(4)?..start.checked_add(20)?)?;
    let size = chunk.get(start.checked_add(20)?..start.checked_add(DEFINITION_HEADER)?)?;
    let size = u32::from_le_bytes(size.try_into().ok()?);
    let body_start = start.checked_add(DEFINITION_HEADER)?;
    let body = chunk.get(body_start..body_start.checked_add(size as usize)?)?;
    let key = Key {
        root,
        def,
        size,
        guid: guid.try_into().ok()?,
    };
    Some((key, body))
}
