//! `OriginalFileName` (and the other version strings Sysmon reports) from
//! the version resource of a PE image, in pure Rust.
//!
//! Sigma rules key on `OriginalFileName` so that a renamed binary
//! (`procdump.exe` copied to `pd.exe`) is still recognised. The name lives in
//! the image's `VS_VERSIONINFO` resource: PE headers → resource directory →
//! `RT_VERSION` → `StringFileInfo` → the string table of the file's language.
//! Parsing touches only the headers and the resource section, reads at most
//! [`MAX_RESOURCE_BYTES`] of the file, checks every offset against what was
//! read, and reports bad input as a [`PeError`]: it never panics and never
//! loops.
//!
//! ```
//! use trawl_sensor::etw::pe::version_strings;
//!
//! // Not a PE image: an error that says so, not a panic.
//! assert!(version_strings(b"#!/bin/sh\n").is_err());
//! ```

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The most of a resource section (or version block) trawl reads.
pub const MAX_RESOURCE_BYTES: usize = 16 << 20;

/// `RT_VERSION`, the resource type of `VS_VERSIONINFO`.
const RT_VERSION: u32 = 16;

/// The strings of a version resource that trawl reports (Sysmon's names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionStrings {
    /// `OriginalFilename`.
    pub original_file_name: Option<String>,
    /// `CompanyName` (Sysmon: `Company`).
    pub company: Option<String>,
    /// `ProductName` (Sysmon: `Product`).
    pub product: Option<String>,
    /// `FileDescription` (Sysmon: `Description`).
    pub description: Option<String>,
    /// `FileVersion`.
    pub file_version: Option<String>,
}

/// Why no version strings could be read from a file.
#[derive(Debug, thiserror::Error)]
pub enum PeError {
    #[error("cannot read {path}: {error}")]
    Io { path: String, error: std::io::Error },
    /// Not a PE image at all (no `MZ`/`PE` signature, unknown optional header).
    #[error("not a PE image: {0}")]
    NotPe(&'static str),
    /// A PE image whose headers or resources point outside the file or are
    /// inconsistent.
    #[error("malformed PE image: {0}")]
    Malformed(&'static str),
}

/// Reads the version strings of the image at `path`, touching only its
/// headers and resource section. `Ok(None)` for an image without a version
/// resource.
pub fn read_version_strings(path: &Path) -> Result<Option<VersionStrings>, PeError> {
    let io = |error| PeError::Io {
        path: path.display().to_string(),
        error,
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut src = FileSource { file, len };
    parse(&mut src).map_err(|e| match e {
        PeError::Io { error, .. } => io(error),
        other => other,
    })
}

/// The version strings of a whole image held in memory.
pub fn version_strings(image: &[u8]) -> Result<Option<VersionStrings>, PeError> {
    parse(&mut SliceSource(image))
}

/// Where the parser reads bytes from.
trait Source {
    /// Up to `len` bytes at `offset` (fewer at the end of the file).
    fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, PeError>;
}

struct SliceSource<'a>(&'a [u8]);

impl Source for SliceSource<'_> {
    fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, PeError> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.0.len());
        let end = start.saturating_add(len).min(self.0.len());
        Ok(self.0[start..end].to_vec())
    }
}

struct FileSource {
    file: File,
    len: u64,
}

impl Source for FileSource {
    fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, PeError> {
        let io = |error| PeError::Io {
            path: String::new(),
            error,
        };
        if offset >= self.len {
            return Ok(Vec::new());
        }
        let len = (len as u64).min(self.len - offset);
        self.file.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut buf = Vec::with_capacity(len as usize);
        (&mut self.file)
            .take(len)
            .read_to_end(&mut buf)
            .map_err(io)?;
        Ok(buf)
    }
}

#[derive(Debug, Clone, Copy)]
struct Section {
    virtual_address: u32,
    raw_pointer: u32,
    raw_size: u32,
}

impl Section {
    /// The file offset of `rva` and how many bytes of the section follow it.
    fn locate(&self, rva: u32) -> Option<(u64, u32)> {
        let delta = rva.checked_sub(self.virtual_address)?;
        // Bytes past the raw data are zero-filled in memory, not in the file.
        if delta >= self.raw_size {
            return None;
        }
        Some((
            u64::from(self.raw_pointer) + u64::from(delta),
            self.raw_size - delta,
        ))
    }
}

fn parse(src: &mut dyn Source) -> Result<Option<VersionStrings>, PeError> {
    let dos = src.read_at(0, 64)?;
    if dos.len() < 64 || &dos[..2] != b"MZ" {
        return Err(PeError::NotPe("no MZ header"));
    }
    let nt_offset = u64::from(le32(&dos, 0x3c).unwrap_or(0));
    let coff = src.read_at(nt_offset, 24)?;
    if coff.len() < 24 || &coff[..4] != b"PE\0\0" {
        return Err(PeError::NotPe("no PE signature"));
    }
    let sections = usize::from(le16(&coff, 6).unwrap_or(0));
    let optional_size = usize::from(le16(&coff, 20).unwrap_or(0));
    if sections > 96 {
        return Err(PeError::Malformed("more than 96 sections"));
    }
    let optional = src.read_at(nt_offset + 24, optional_size)?;
    if optional.len() < optional_size {
        return Err(PeError::Malformed("optional header cut short"));
    }
    let (count_at, dirs_at) = match le16(&optional, 0) {
        Some(0x10b) => (92, 96),
        Some(0x20b) => (108, 112),
        _ => return Err(PeError::NotPe("unknown optional header magic")),
    };
    let dir_count =
        le32(&optional, count_at).ok_or(PeError::Malformed("optional header too short"))?;
    if dir_count <= 2 {
        return Ok(None);
    }
    let (Some(rsrc_rva), Some(rsrc_size)) = (
        le32(&optional, dirs_at + 2 * 8),
        le32(&optional, dirs_at + 2 * 8 + 4),
    ) else {
        return Err(PeError::Malformed("data directories cut short"));
    };
    if rsrc_rva == 0 || rsrc_size == 0 {
        return Ok(None);
    }
    let table = src.read_at(nt_offset + 24 + optional_size as u64, 40 * sections)?;
    if table.len() < 40 * sections {
        return Err(PeError::Malformed("section table cut short"));
    }
    let sections: Vec<Section> = table
        .chunks_exact(40)
        .map(|s| Section {
            virtual_address: le32(s, 12).unwrap_or(0),
            raw_size: le32(s, 16).unwrap_or(0),
            raw_pointer: le32(s, 20).unwrap_or(0),
        })
        .collect();
    let locate = |rva: u32| sections.iter().find_map(|s| s.locate(rva));

    let (rsrc_offset, available) = locate(rsrc_rva).ok_or(PeError::Malformed(
        "resource directory outside every section",
    ))?;
    let rsrc_len = (available as usize).min(MAX_RESOURCE_BYTES);
    let rsrc = src.read_at(rsrc_offset, rsrc_len)?;
    let Some((data_rva, data_size)) = find_version_resource(&rsrc)? else {
        return Ok(None);
    };
    let data_size = data_size as usize;
    if data_size > MAX_RESOURCE_BYTES {
        return Err(PeError::Malformed(
            "version resource larger than the read cap",
        ));
    }
    // Usually inside the resource section already read; else read it.
    let inside = data_rva
        .checked_sub(rsrc_rva)
        .map(|d| d as usize)
        .filter(|d| {
            d.checked_add(data_size)
                .is_some_and(|end| end <= rsrc.len())
        });
    let block = match inside {
        Some(start) => rsrc[start..start + data_size].to_vec(),
        None => {
            let (offset, _) = locate(data_rva)
                .ok_or(PeError::Malformed("version resource outside every section"))?;
            let block = src.read_at(offset, data_size)?;
            if block.len() < data_size {
                return Err(PeError::Malformed("version resource cut short"));
            }
            block
        }
    };
    parse_version_info(&block).map(Some)
}

/// Walks type → name → language to the first `RT_VERSION` data entry:
/// its RVA and size.
fn find_version_resource(rsrc: &[u8]) -> Result<Option<(u32, u32)>, PeError> {
    let bad = PeError::Malformed("resource directory points outside the resource section");
    // Level 1: the type, `RT_VERSION`.
    let Some(entry) = directory_entries(rsrc, 0)?.find(|(id, _)| *id == RT_VERSION) else {
        return Ok(None);
    };
    let mut target = entry.1;
    // Levels 2 and 3: the first name, the first language.
    for _ in 0..2 {
        if target & 0x8000_0000 == 0 {
            return Err(PeError::Malformed("version resource tree is too shallow"));
        }
        let dir = (target & 0x7fff_ffff) as usize;
        target = match directory_entries(rsrc, dir)?.next() {
            Some((_, t)) => t,
            None => return Ok(None),
        };
    }
    if target & 0x8000_0000 != 0 {
        return Err(PeError::Malformed("version resource tree is too deep"));
    }
    let leaf = target as usize;
    match (le32(rsrc, leaf), le32(rsrc, leaf + 4)) {
        (Some(rva), Some(size)) => Ok(Some((rva, size))),
        _ => Err(bad),
    }
}

/// The `(name or id, target)` entries of the resource directory at `offset`.
fn directory_entries(
    rsrc: &[u8],
    offset: usize,
) -> Result<impl Iterator<Item = (u32, u32)> + '_, PeError> {
    let named = le16(rsrc, offset + 12);
    let ids = le16(rsrc, offset + 14);
    let (Some(named), Some(ids)) = (named, ids) else {
        return Err(PeError::Malformed("resource directory cut short"));
    };
    let count = usize::from(named) + usize::from(ids);
    let start = offset + 16;
    if start + 8 * count > rsrc.len() {
        return Err(PeError::Malformed("resource directory entries cut short"));
    }
    Ok((0..count).filter_map(move |i| {
        let at = start + 8 * i;
        Some((le32(rsrc, at)?, le32(rsrc, at + 4)?))
    }))
}

/// One node of a `VS_VERSIONINFO` tree (`wLength`, `wValueLength`, `wType`,
/// `szKey`, padding, value, padding, children).
struct Node<'a> {
    key: String,
    value: &'a [u8],
    is_text: bool,
    children: &'a [u8],
}

fn node(buf: &[u8]) -> Result<(Node<'_>, usize), PeError> {
    let bad = |why| PeError::Malformed(why);
    let length = usize::from(le16(buf, 0).ok_or(bad("version node cut short"))?);
    let value_length = usize::from(le16(buf, 2).ok_or(bad("version node cut short"))?);
    let kind = le16(buf, 4).ok_or(bad("version node cut short"))?;
    if length < 6 || length > buf.len() {
        return Err(bad("version node length out of bounds"));
    }
    let body = &buf[..length];
    let mut at = 6;
    let mut key = Vec::new();
    while let Some(c) = le16(body, at) {
        at += 2;
        if c == 0 {
            break;
        }
        key.push(c);
    }
    let key = String::from_utf16_lossy(&key);
    let is_text = kind == 1;
    let value_start = align4(at).min(length);
    let value_bytes = if is_text {
        value_length * 2
    } else {
        value_length
    };
    let value_end = value_start.saturating_add(value_bytes).min(length);
    let children_start = align4(value_end).min(length);
    Ok((
        Node {
            key,
            value: &body[value_start..value_end],
            is_text,
            children: &body[children_start..],
        },
        align4(length).min(buf.len()),
    ))
}

/// The nodes laid end to end in `buf`.
fn children(mut buf: &[u8]) -> impl Iterator<Item = Result<Node<'_>, PeError>> {
    std::iter::from_fn(move || {
        if buf.len() < 6 {
            return None;
        }
        match node(buf) {
            Ok((n, next)) => {
                buf = &buf[next..];
                Some(Ok(n))
            }
            Err(e) => {
                buf = &[];
                Some(Err(e))
            }
        }
    })
}

fn parse_version_info(block: &[u8]) -> Result<VersionStrings, PeError> {
    let (root, _) = node(block)?;
    if root.key != "VS_VERSION_INFO" {
        return Err(PeError::Malformed(
            "version resource is not VS_VERSION_INFO",
        ));
    }
    let mut tables: Vec<Node<'_>> = Vec::new();
    let mut translation: Option<String> = None;
    for child in children(root.children) {
        let child = child?;
        match child.key.as_str() {
            "StringFileInfo" => {
                for table in children(child.children) {
                    tables.push(table?);
                }
            }
            "VarFileInfo" => {
                for var in children(child.children) {
                    let var = var?;
                    if var.key == "Translation" && translation.is_none() {
                        if let (Some(lang), Some(cp)) = (le16(var.value, 0), le16(var.value, 2)) {
                            translation = Some(format!("{lang:04x}{cp:04x}"));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let table = translation
        .as_deref()
        .and_then(|t| tables.iter().position(|n| n.key.eq_ignore_ascii_case(t)))
        .unwrap_or(0);
    let mut out = VersionStrings::default();
    let Some(table) = tables.get(table) else {
        return Ok(out);
    };
    for entry in children(table.children) {
        let entry = entry?;
        let slot = match entry.key.to_ascii_lowercase().as_str() {
            "originalfilename" => &mut out.original_file_name,
            "companyname" => &mut out.company,
            "productname" => &mut out.product,
            "filedescription" => &mut out.description,
            "fileversion" => &mut out.file_version,
            _ => continue,
        };
        let units: Vec<u16> = entry
            .value
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&c| c != 0)
            .collect();
        let text = String::from_utf16_lossy(&units);
        let text = text.trim();
        if entry.is_text && !text.is_empty() {
            *slot = Some(text.to_owned());
        }
    }
    Ok(out)
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

#[cfg(test)]
pub(crate) mod tests;
