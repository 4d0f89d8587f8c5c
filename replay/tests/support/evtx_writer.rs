//! A small EVTX writer for tests: valid `.evtx` bytes built the way Windows
//! lays them out, so the readers are tested on files the project writes
//! itself (no sample logs needed).
//!
//! The layout follows MS-EVEN6 (2.2 BinXml, 2.2.12 optional substitutions
//! and dependencies) and libevtx's "Windows XML Event Log (EVTX)" notes:
//!
//! - **File header** (4096 bytes): `ElfFile\0`, oldest chunk, current chunk,
//!   next record id, header size 128, version 3.1, header block size 4096,
//!   chunk count, flags, CRC32 of bytes 0..120 at 124.
//! - **Chunk** (65536 bytes): `ElfChnk\0`, first/last record number, first/
//!   last record id, header size 128, last record offset, free space offset,
//!   CRC32 of the records (512..free space), flags, CRC32 of the header
//!   (0..120 and 128..512), the 64-bucket string table (name offsets by hash
//!   % 64, chained through each name's `next` field) and the 32-bucket
//!   template table. Records start at 512.
//! - **Record**: `**\0\0`, size (header, BinXML and the trailing size copy),
//!   record id, FILETIME, BinXML, size again.
//! - **BinXML**: a fragment header (`0f 01 01 00`), one template instance
//!   (`0c 01`, template id, definition offset, then the definition itself
//!   when this is its first use in the chunk, else only the offset), the
//!   substitution values (count, `size u16 type u8 0` descriptors, values),
//!   and EOF. A definition is `next u32, GUID, data size u32` and a BinXML
//!   fragment whose element starts carry a dependency id; names are written
//!   in place at their first use in a chunk (`next u32, hash u16, count u16,
//!   UTF-16, NUL`) and referred to by offset afterwards.
//!
//! A value of type [`Value::BinXml`] is embedded BinXML (type 0x21): a
//! fragment holding a template instance of its own, which is how most logs
//! write `EventData`.
//!
//! ```ignore
//! let mut w = EvtxWriter::new();
//! let t = w.template(el("Event").child(el("System").child(el("EventID").sub(0, ty::UINT16))));
//! w.record(1, FILETIME, t, vec![Value::U16(4688)]);
//! std::fs::write(path, w.finish())?;
//! ```

#![allow(dead_code)]

use std::collections::HashMap;

/// The size of the file header block.
pub const FILE_HEADER: usize = 4096;
/// The size of a chunk.
pub const CHUNK: usize = 65536;
/// Where a chunk's first record starts.
pub const CHUNK_HEADER: usize = 512;
/// The bytes of a record header.
pub const RECORD_HEADER: usize = 24;

/// BinXML value types (MS-EVEN6 2.2.18).
pub mod ty {
    pub const NULL: u8 = 0x00;
    pub const STRING: u8 = 0x01;
    pub const UINT8: u8 = 0x04;
    pub const UINT16: u8 = 0x06;
    pub const UINT32: u8 = 0x08;
    pub const UINT64: u8 = 0x0a;
    pub const BOOL: u8 = 0x0d;
    pub const BINARY: u8 = 0x0e;
    pub const GUID: u8 = 0x0f;
    pub const FILETIME: u8 = 0x11;
    pub const SID: u8 = 0x13;
    pub const HEX_INT32: u8 = 0x14;
    pub const HEX_INT64: u8 = 0x15;
    pub const BINXML: u8 = 0x21;
}

/// A template definition's element.
#[derive(Debug, Clone)]
pub struct Element {
    name: String,
    dependency: Option<u16>,
    attrs: Vec<(String, Vec<Piece>)>,
    children: Vec<Node>,
}

/// Element content or an attribute value part.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Literal text of the template.
    Text(String),
    /// Substitution `id` of type `ty`; `optional` (token 0x0e) leaves out an
    /// empty value.
    Sub { id: u16, ty: u8, optional: bool },
}

#[derive(Debug, Clone)]
enum Node {
    Element(Element),
    Piece(Piece),
}

/// An element named `name`.
pub fn el(name: &str) -> Element {
    Element {
        name: name.to_owned(),
        dependency: None,
        attrs: Vec::new(),
        children: Vec::new(),
    }
}

/// An optional substitution (what Windows templates mostly use).
pub fn opt(id: u16, ty: u8) -> Piece {
    Piece::Sub {
        id,
        ty,
        optional: true,
    }
}

/// A normal substitution.
pub fn sub(id: u16, ty: u8) -> Piece {
    Piece::Sub {
        id,
        ty,
        optional: false,
    }
}

/// Literal text.
pub fn text(t: &str) -> Piece {
    Piece::Text(t.to_owned())
}

impl Element {
    /// Adds an attribute whose value is `value`.
    pub fn attr(mut self, name: &str, value: Piece) -> Self {
        self.attrs.push((name.to_owned(), vec![value]));
        self
    }

    /// Adds a child element.
    pub fn child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Adds content (text or a substitution).
    pub fn content(mut self, piece: Piece) -> Self {
        self.children.push(Node::Piece(piece));
        self
    }

    /// Leaves the element out of an instance whose value `id` is NULL.
    pub fn depends_on(mut self, id: u16) -> Self {
        self.dependency = Some(id);
        self
    }
}

/// A substitution value of a template instance.
#[derive(Debug, Clone)]
pub enum Value {
    /// The NULL type, no bytes.
    Null,
    /// UTF-16 text with its NUL terminator, as Windows writes it.
    Str(String),
    /// Text of no bytes at all.
    EmptyStr,
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    Bool(bool),
    HexI32(u32),
    HexI64(u64),
    Binary(Vec<u8>),
    /// A GUID in its text form, `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}`.
    Guid(String),
    /// A SID in its text form, `S-1-5-18`.
    Sid(String),
    /// 100 ns ticks since 1601-01-01.
    FileTime(u64),
    /// Embedded BinXML: an instance of `template` with `values`.
    BinXml(TemplateId, Vec<Value>),
    /// Any type byte and raw bytes (for damaged or unusual values).
    Raw(u8, Vec<u8>),
}

impl Value {
    /// Text value.
    pub fn s(t: &str) -> Value {
        Value::Str(t.to_owned())
    }

    fn ty(&self) -> u8 {
        match self {
            Value::Null => ty::NULL,
            Value::Str(_) | Value::EmptyStr => ty::STRING,
            Value::U8(_) => ty::UINT8,
            Value::U16(_) => ty::UINT16,
            Value::U32(_) => ty::UINT32,
            Value::U64(_) => ty::UINT64,
            Value::Bool(_) => ty::BOOL,
            Value::HexI32(_) => ty::HEX_INT32,
            Value::HexI64(_) => ty::HEX_INT64,
            Value::Binary(_) => ty::BINARY,
            Value::Guid(_) => ty::GUID,
            Value::Sid(_) => ty::SID,
            Value::FileTime(_) => ty::FILETIME,
            Value::BinXml(..) => ty::BINXML,
            Value::Raw(t, _) => *t,
        }
    }

    /// The bytes of a scalar value (not [`Value::BinXml`]).
    fn scalar_bytes(&self) -> Vec<u8> {
        match self {
            Value::Null | Value::EmptyStr => Vec::new(),
            Value::Str(s) => utf16(s).into_iter().chain([0, 0]).collect(),
            Value::U8(v) => vec![*v],
            Value::U16(v) => v.to_le_bytes().to_vec(),
            Value::U32(v) | Value::HexI32(v) => v.to_le_bytes().to_vec(),
            Value::U64(v) | Value::HexI64(v) | Value::FileTime(v) => v.to_le_bytes().to_vec(),
            Value::Bool(b) => u32::from(*b).to_le_bytes().to_vec(),
            Value::Binary(b) | Value::Raw(_, b) => b.clone(),
            Value::Guid(g) => guid_bytes(g),
            Value::Sid(s) => sid_bytes(s),
            Value::BinXml(..) => unreachable!("embedded BinXML is written in place"),
        }
    }
}

/// UTF-16LE bytes of `s`.
pub fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A GUID's 16 bytes: Data1-3 little-endian, Data4 in order.
fn guid_bytes(text: &str) -> Vec<u8> {
    let hex: String = text.chars().filter(char::is_ascii_hexdigit).collect();
    assert_eq!(hex.len(), 32, "a GUID has 32 hex digits: {text}");
    let b: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    let mut out = vec![b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]];
    out.extend_from_slice(&b[8..]);
    out
}

/// A SID's bytes: revision, sub-authority count, 48-bit big-endian
/// authority, little-endian 32-bit sub-authorities.
fn sid_bytes(text: &str) -> Vec<u8> {
    let parts: Vec<u64> = text
        .strip_prefix("S-")
        .expect("a SID starts with S-")
        .split('-')
        .map(|p| p.parse().expect("SID parts are numbers"))
        .collect();
    let mut out = vec![parts[0] as u8, (parts.len() - 2) as u8];
    out.extend_from_slice(&parts[1].to_be_bytes()[2..]);
    for sub in &parts[2..] {
        out.extend_from_slice(&(*sub as u32).to_le_bytes());
    }
    out
}

/// The hash Windows stores with a name (MS-EVEN6 2.2.12: the low 16 bits of
/// `hash = hash * 65599 + unit` over the UTF-16 code units).
pub fn name_hash(name: &str) -> u16 {
    let h = name.encode_utf16().fold(0u32, |h, u| {
        h.wrapping_mul(65599).wrapping_add(u32::from(u))
    });
    h as u16
}

/// A template registered with the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateId(usize);

/// Where a record was written.
#[derive(Debug, Clone, Copy)]
pub struct RecordAt {
    /// The chunk's index in writing order.
    pub chunk: usize,
    /// The record's offset in its chunk.
    pub offset: usize,
    /// The record's size.
    pub size: usize,
    /// The offset in the chunk of the record's first value descriptor.
    pub descriptors: usize,
    /// Whether the record's template definition is written in it.
    pub inline_definition: bool,
}

/// One chunk being written.
#[derive(Clone)]
struct Chunk {
    buf: Vec<u8>,
    names: HashMap<String, u32>,
    name_tails: [u32; 64],
    string_table: [u32; 64],
    templates: HashMap<TemplateId, u32>,
    template_tails: [u32; 32],
    template_table: [u32; 32],
    first_id: Option<u64>,
    last_id: u64,
    last_record: u32,
}

impl Chunk {
    fn new() -> Chunk {
        Chunk {
            buf: vec![0; CHUNK_HEADER],
            names: HashMap::new(),
            name_tails: [0; 64],
            string_table: [0; 64],
            templates: HashMap::new(),
            template_tails: [0; 32],
            template_table: [0; 32],
            first_id: None,
            last_id: 0,
            last_record: 0,
        }
    }

    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn pos(&self) -> u32 {
        self.buf.len() as u32
    }

    fn patch_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// A name reference: the name written here at its first use in the
    /// chunk, and linked into the string table.
    fn name(&mut self, name: &str) {
        if let Some(&at) = self.names.get(name) {
            return self.u32(at);
        }
        let at = self.pos() + 4;
        self.u32(at);
        self.u32(0); // next name in the bucket
        let hash = name_hash(name);
        self.u16(hash);
        self.u16(name.encode_utf16().count() as u16);
        self.buf.extend(utf16(name));
        self.u16(0);
        self.names.insert(name.to_owned(), at);
        let bucket = usize::from(hash) % 64;
        match self.name_tails[bucket] {
            0 => self.string_table[bucket] = at,
            tail => self.patch_u32(tail as usize, at),
        }
        self.name_tails[bucket] = at;
    }

    fn piece(&mut self, piece: &Piece, more: bool) {
        match piece {
            Piece::Text(t) => {
                self.buf.push(if more { 0x45 } else { 0x05 });
                self.buf.push(ty::STRING);
                self.u16(t.encode_utf16().count() as u16);
                self.buf.extend(utf16(t));
            }
            Piece::Sub { id, ty, optional } => {
                self.buf.push(if *optional { 0x0e } else { 0x0d });
                self.u16(*id);
                self.buf.push(*ty);
            }
        }
    }

    fn element(&mut self, e: &Element) {
        self.buf.push(if e.attrs.is_empty() { 0x01 } else { 0x41 });
        self.u16(e.dependency.unwrap_or(0xffff));
        let size_at = self.buf.len();
        self.u32(0);
        self.name(&e.name);
        if !e.attrs.is_empty() {
            let list_at = self.buf.len();
            self.u32(0);
            for (i, (name, value)) in e.attrs.iter().enumerate() {
                self.buf
                    .push(if i + 1 < e.attrs.len() { 0x46 } else { 0x06 });
                self.name(name);
                for (j, p) in value.iter().enumerate() {
                    self.piece(p, j + 1 < value.len());
                }
            }
            let list = self.buf.len() - list_at - 4;
            self.patch_u32(list_at, list as u32);
        }
        if e.children.is_empty() {
            self.buf.push(0x03);
        } else {
            self.buf.push(0x02);
            for (i, child) in e.children.iter().enumerate() {
                match child {
                    Node::Element(c) => self.element(c),
                    Node::Piece(p) => {
                        let more = matches!(e.children.get(i + 1), Some(Node::Piece(_)));
                        self.piece(p, more);
                    }
                }
            }
            self.buf.push(0x04);
        }
        let size = self.buf.len() - size_at - 4;
        self.patch_u32(size_at, size as u32);
    }

    /// A template instance of `t` with `values`; returns where its value
    /// descriptors start and whether the definition was written here.
    fn instance(
        &mut self,
        templates: &[Element],
        t: TemplateId,
        values: &[Value],
    ) -> (usize, bool) {
        self.buf.push(0x0c);
        self.buf.push(0x01);
        self.u32(t.0 as u32 + 1);
        let inline = !self.templates.contains_key(&t);
        if inline {
            let at = self.pos() + 4;
            self.u32(at);
            self.templates.insert(t, at);
            let bucket = t.0 % 32;
            match self.template_tails[bucket] {
                0 => self.template_table[bucket] = at,
                tail => self.patch_u32(tail as usize, at),
            }
            self.template_tails[bucket] = at;
            self.u32(0); // next template in the bucket
            self.buf
                .extend((0..16u8).map(|i| i.wrapping_mul(17) ^ t.0 as u8));
            let size_at = self.buf.len();
            self.u32(0);
            self.buf.extend_from_slice(&[0x0f, 1, 1, 0]);
            self.element(&templates[t.0]);
            self.buf.push(0x00);
            let size = self.buf.len() - size_at - 4;
            self.patch_u32(size_at, size as u32);
        } else {
            let at = self.templates[&t];
            self.u32(at);
        }
        self.u32(values.len() as u32);
        // An embedded value's size is known by writing the values once, in
        // order, on a copy (a definition or name it writes is then only
        // referred to by the values after it, as in the real write).
        let mut copy = self.clone();
        let sizes: Vec<usize> = values
            .iter()
            .map(|v| match v {
                Value::BinXml(inner, vals) => {
                    let start = copy.buf.len();
                    copy.embedded(templates, *inner, vals);
                    copy.buf.len() - start
                }
                other => other.scalar_bytes().len(),
            })
            .collect();
        let descriptors = self.buf.len();
        for (v, size) in values.iter().zip(&sizes) {
            self.u16(u16::try_from(*size).expect("a value fits a u16 size"));
            self.buf.push(v.ty());
            self.buf.push(0);
        }
        for v in values {
            match v {
                Value::BinXml(inner, vals) => self.embedded(templates, *inner, vals),
                other => self.buf.extend(other.scalar_bytes()),
            }
        }
        (descriptors, inline)
    }

    fn embedded(&mut self, templates: &[Element], t: TemplateId, values: &[Value]) {
        self.buf.extend_from_slice(&[0x0f, 1, 1, 0]);
        self.instance(templates, t, values);
        self.buf.push(0x00);
    }

    fn record(
        &mut self,
        templates: &[Element],
        id: u64,
        filetime: u64,
        t: TemplateId,
        values: &[Value],
    ) -> (usize, usize, usize, bool) {
        let start = self.buf.len();
        self.buf.extend_from_slice(b"**\0\0");
        self.u32(0);
        self.buf.extend_from_slice(&id.to_le_bytes());
        self.buf.extend_from_slice(&filetime.to_le_bytes());
        self.buf.extend_from_slice(&[0x0f, 1, 1, 0]);
        let (descriptors, inline) = self.instance(templates, t, values);
        self.buf.push(0x00);
        let size = (self.buf.len() - start + 4) as u32;
        self.u32(size);
        self.patch_u32(start + 4, size);
        self.first_id.get_or_insert(id);
        self.last_id = id;
        self.last_record = start as u32;
        (start, size as usize, descriptors, inline)
    }

    /// The chunk's 64 KiB with its header and CRCs filled in.
    fn finish(&self) -> Vec<u8> {
        let mut b = self.buf.clone();
        let free = b.len() as u32;
        b.resize(CHUNK, 0);
        b[..8].copy_from_slice(b"ElfChnk\0");
        let first = self.first_id.unwrap_or(1);
        let put64 =
            |b: &mut Vec<u8>, at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        put64(&mut b, 8, first);
        put64(&mut b, 16, self.last_id);
        put64(&mut b, 24, first);
        put64(&mut b, 32, self.last_id);
        let put32 =
            |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        put32(&mut b, 40, 128);
        put32(&mut b, 44, self.last_record);
        put32(&mut b, 48, free);
        let events = crc32fast::hash(&b[CHUNK_HEADER..free as usize]);
        put32(&mut b, 52, events);
        put32(&mut b, 120, 0);
        for (i, &at) in self.string_table.iter().enumerate() {
            put32(&mut b, 128 + i * 4, at);
        }
        for (i, &at) in self.template_table.iter().enumerate() {
            put32(&mut b, 384 + i * 4, at);
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&b[..120]);
        crc.update(&b[128..CHUNK_HEADER]);
        let header = crc.finalize();
        put32(&mut b, 124, header);
        b
    }
}

/// Where a chunk slot of the file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The chunk written `n`th.
    Chunk(usize),
    /// 64 KiB of zeros (a slot the log has not used yet).
    Zero,
}

/// Writes records into chunks, then the file.
pub struct EvtxWriter {
    templates: Vec<Element>,
    chunks: Vec<Chunk>,
    /// Records per chunk at most (the chunk also ends when it is full).
    pub per_chunk: usize,
    in_chunk: usize,
}

impl Default for EvtxWriter {
    fn default() -> Self {
        EvtxWriter::new()
    }
}

impl EvtxWriter {
    pub fn new() -> EvtxWriter {
        EvtxWriter {
            templates: Vec::new(),
            chunks: vec![Chunk::new()],
            per_chunk: usize::MAX,
            in_chunk: 0,
        }
    }

    /// Registers a template (its root element).
    pub fn template(&mut self, root: Element) -> TemplateId {
        self.templates.push(root);
        TemplateId(self.templates.len() - 1)
    }

    /// Ends the current chunk: the next record starts a new one.
    pub fn new_chunk(&mut self) {
        if self.in_chunk > 0 {
            self.chunks.push(Chunk::new());
            self.in_chunk = 0;
        }
    }

    /// Writes a record of template `t`.
    pub fn record(
        &mut self,
        id: u64,
        filetime: u64,
        t: TemplateId,
        values: Vec<Value>,
    ) -> RecordAt {
        if self.in_chunk >= self.per_chunk {
            self.new_chunk();
        }
        let before = self.chunks.last().expect("a chunk").clone();
        let last = self.chunks.last_mut().expect("a chunk");
        let mut at = last.record(&self.templates, id, filetime, t, &values);
        if last.buf.len() > CHUNK {
            assert!(self.in_chunk > 0, "a record larger than a chunk");
            *self.chunks.last_mut().expect("a chunk") = before;
            self.chunks.push(Chunk::new());
            self.in_chunk = 0;
            let last = self.chunks.last_mut().expect("a chunk");
            at = last.record(&self.templates, id, filetime, t, &values);
        }
        self.in_chunk += 1;
        RecordAt {
            chunk: self.chunks.len() - 1,
            offset: at.0,
            size: at.1,
            descriptors: at.2,
            inline_definition: at.3,
        }
    }

    /// Chunks written so far (the current one included, when it has records).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len() - usize::from(self.in_chunk == 0)
    }

    /// The file, chunks in the order written.
    pub fn finish(&self) -> Vec<u8> {
        let layout: Vec<Slot> = (0..self.chunk_count()).map(Slot::Chunk).collect();
        self.finish_as(&layout)
    }

    /// The file with its chunk slots laid out as `layout` says (a log that
    /// wrapped around has its oldest chunk mid-file).
    pub fn finish_as(&self, layout: &[Slot]) -> Vec<u8> {
        let mut file = vec![0u8; FILE_HEADER];
        file[..8].copy_from_slice(b"ElfFile\0");
        let slot_of = |n: usize| layout.iter().position(|s| *s == Slot::Chunk(n));
        let oldest = slot_of(0).unwrap_or(0) as u64;
        let newest = slot_of(self.chunk_count().saturating_sub(1)).unwrap_or(0) as u64;
        let next_id = self.chunks.iter().map(|c| c.last_id).max().unwrap_or(0) + 1;
        file[8..16].copy_from_slice(&oldest.to_le_bytes());
        file[16..24].copy_from_slice(&newest.to_le_bytes());
        file[24..32].copy_from_slice(&next_id.to_le_bytes());
        file[32..36].copy_from_slice(&128u32.to_le_bytes());
        file[36..38].copy_from_slice(&1u16.to_le_bytes());
        file[38..40].copy_from_slice(&3u16.to_le_bytes());
        file[40..42].copy_from_slice(&(FILE_HEADER as u16).to_le_bytes());
        file[42..44].copy_from_slice(&(layout.len() as u16).to_le_bytes());
        let crc = crc32fast::hash(&file[..120]);
        file[124..128].copy_from_slice(&crc.to_le_bytes());
        for slot in layout {
            match slot {
                Slot::Chunk(n) => file.extend(self.chunks[*n].finish()),
                Slot::Zero => file.resize(file.len() + CHUNK, 0),
            }
        }
        file
    }

    /// Where in a file laid out in writing order a chunk offset is.
    pub fn file_offset(chunk: usize, offset: usize) -> usize {
        FILE_HEADER + chunk * CHUNK + offset
    }
}
