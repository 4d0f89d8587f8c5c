//! ferrisetw `EventRecord`s → the property sets of [`crate::etw::props`].
//!
//! Reading only: each function asks the record's schema for the properties
//! its shape has and copies them out. What the event means is decided later,
//! by the platform-free converter.

use ferrisetw::parser::{Parser, Pointer};
use ferrisetw::schema_locator::SchemaLocator;
use ferrisetw::EventRecord;

use crate::etw::props::*;
use crate::etw::sid::sid_from_token_user;

/// `EVENT_HEADER_FLAG_32_BIT_HEADER`: the event came from a 32-bit context.
const EVENT_HEADER_FLAG_32_BIT_HEADER: u16 = 0x0020;

/// A record that could not be read, and why.
#[derive(Debug)]
pub(super) struct Unreadable {
    pub shape: &'static str,
    pub reason: String,
}

type Read<T> = Result<Option<T>, Unreadable>;

fn header(record: &EventRecord) -> Header {
    Header {
        timestamp: record.raw_timestamp(),
        process_id: record.process_id(),
    }
}

/// Parses `record` with its schema and hands the parser to `read`.
fn with_parser<T>(
    record: &EventRecord,
    locator: &SchemaLocator,
    shape: &'static str,
    read: impl FnOnce(&Parser) -> Result<T, String>,
) -> Read<T> {
    let schema = locator.event_schema(record).map_err(|e| Unreadable {
        shape,
        reason: format!("no schema: {e:?}"),
    })?;
    let parser = Parser::create(record, &schema);
    read(&parser)
        .map(Some)
        .map_err(|reason| Unreadable { shape, reason })
}

// ferrisetw's parse trait is sealed, so one small reader per type.
fn why(name: &str, e: ferrisetw::parser::ParserError) -> String {
    format!("property {name}: {e}")
}

fn u32_prop(parser: &Parser, name: &str) -> Result<u32, String> {
    parser.try_parse::<u32>(name).map_err(|e| why(name, e))
}

fn text_prop(parser: &Parser, name: &str) -> Result<String, String> {
    parser.try_parse::<String>(name).map_err(|e| why(name, e))
}

fn pointer_prop(parser: &Parser, name: &str) -> Result<u64, String> {
    let p: Pointer = parser.try_parse(name).map_err(|e| why(name, e))?;
    Ok(*p as u64)
}

/// An ANSI string property; names that are not UTF-8 are kept lossily
/// rather than refused.
fn ansi(parser: &Parser, name: &str) -> Result<String, String> {
    if let Ok(s) = parser.try_parse::<String>(name) {
        return Ok(s);
    }
    let bytes: Vec<u8> = parser.try_parse(name).map_err(|e| why(name, e))?;
    Ok(String::from_utf8_lossy(&bytes)
        .trim_end_matches('\0')
        .to_owned())
}

/// Kernel trace, `PROCESS_PROVIDER` (MOF `Process_V4_TypeGroup1`).
pub(super) fn mof_process(record: &EventRecord, locator: &SchemaLocator) -> Read<EtwRecord> {
    let Some(opcode) = MofProcessOpcode::from_opcode(record.opcode()) else {
        return Ok(None);
    };
    let pointer_size = if record.event_flags() & EVENT_HEADER_FLAG_32_BIT_HEADER != 0 {
        4
    } else {
        8
    };
    with_parser(record, locator, "MOF Process", |p| {
        let sid: Option<Vec<u8>> = p.try_parse("UserSID").ok();
        Ok(EtwRecord::MofProcess(MofProcess {
            header: header(record),
            opcode,
            process_id: u32_prop(p, "ProcessId")?,
            parent_id: u32_prop(p, "ParentId")?,
            session_id: u32_prop(p, "SessionId")?,
            user_sid: sid.and_then(|b| sid_from_token_user(&b, pointer_size)),
            image_file_name: ansi(p, "ImageFileName")?,
            command_line: text_prop(p, "CommandLine")?,
        }))
    })
}

/// Microsoft-Windows-Kernel-Process events 1 and 2.
pub(super) fn kernel_process(record: &EventRecord, locator: &SchemaLocator) -> Read<EtwRecord> {
    match record.event_id() {
        1 => with_parser(record, locator, "Kernel-Process ProcessStart", |p| {
            Ok(EtwRecord::ProcessStart(KernelProcessStart {
                header: header(record),
                process_id: u32_prop(p, "ProcessID")?,
                parent_process_id: u32_prop(p, "ParentProcessID")?,
                session_id: u32_prop(p, "SessionID")?,
                image_name: text_prop(p, "ImageName")?,
                // Event version 3 and later only.
                mandatory_label: p.try_parse("MandatoryLabel").ok(),
            }))
        }),
        2 => with_parser(record, locator, "Kernel-Process ProcessStop", |p| {
            Ok(EtwRecord::ProcessStop(KernelProcessStop {
                header: header(record),
                process_id: u32_prop(p, "ProcessID")?,
                exit_code: u32_prop(p, "ExitCode")?,
                image_name: ansi(p, "ImageName")?,
            }))
        }),
        _ => Ok(None),
    }
}

/// Microsoft-Windows-Kernel-File events 30 (`CreateNewFile`) and 12 (`Create`).
pub(super) fn kernel_file(record: &EventRecord, locator: &SchemaLocator) -> Read<EtwRecord> {
    let event = match record.event_id() {
        30 => FileCreateEvent::CreateNewFile,
        12 => FileCreateEvent::Create,
        _ => return Ok(None),
    };
    with_parser(record, locator, "Kernel-File create", |p| {
        Ok(EtwRecord::FileCreate(KernelFileCreate {
            header: header(record),
            event,
            file_object: pointer_prop(p, "FileObject")?,
            create_options: u32_prop(p, "CreateOptions")?,
            file_name: text_prop(p, "FileName")?,
        }))
    })
}
