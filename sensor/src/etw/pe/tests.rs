//! The images here are built byte by byte by the tests themselves: a DOS
//! stub, PE headers, one `.rsrc` section with a resource tree and a
//! `VS_VERSIONINFO` block.

use super::*;

fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
}

fn pad4(b: &mut Vec<u8>) {
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
}

enum Val<'a> {
    None,
    Text(&'a str),
    Bin(Vec<u8>),
}

/// One `VS_VERSIONINFO`-style node with its children.
fn vs_node(key: &str, value: Val<'_>, children: Vec<Vec<u8>>) -> Vec<u8> {
    let (value_len, kind, bytes) = match value {
        Val::None => (0, 1u16, Vec::new()),
        Val::Text(t) => (t.encode_utf16().count() as u16 + 1, 1, utf16z(t)),
        Val::Bin(b) => (b.len() as u16, 0, b),
    };
    let mut n = vec![0, 0];
    n.extend_from_slice(&value_len.to_le_bytes());
    n.extend_from_slice(&kind.to_le_bytes());
    n.extend(utf16z(key));
    pad4(&mut n);
    n.extend(bytes);
    for c in children {
        pad4(&mut n);
        n.extend(c);
    }
    let len = n.len() as u16;
    n[..2].copy_from_slice(&len.to_le_bytes());
    n
}

fn string_table(key: &str, strings: &[(&str, &str)]) -> Vec<u8> {
    let entries = strings
        .iter()
        .map(|(k, v)| vs_node(k, Val::Text(v), vec![]))
        .collect();
    vs_node(key, Val::None, entries)
}

fn version_info(tables: Vec<Vec<u8>>, translation: Option<(u16, u16)>) -> Vec<u8> {
    let mut fixed = vec![0u8; 52];
    fixed[..4].copy_from_slice(&0xFEEF_04BDu32.to_le_bytes());
    let mut children = vec![vs_node("StringFileInfo", Val::None, tables)];
    if let Some((lang, cp)) = translation {
        let mut t = lang.to_le_bytes().to_vec();
        t.extend_from_slice(&cp.to_le_bytes());
        children.push(vs_node(
            "VarFileInfo",
            Val::None,
            vec![vs_node("Translation", Val::Bin(t), vec![])],
        ));
    }
    vs_node("VS_VERSION_INFO", Val::Bin(fixed), children)
}

const SECTION_RVA: u32 = 0x1000;

/// A resource section holding one resource of type `kind`.
fn resources(kind: u32, data: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    let dir = |r: &mut Vec<u8>, id: u32, target: u32| {
        r.extend_from_slice(&[0; 12]);
        r.extend_from_slice(&0u16.to_le_bytes());
        r.extend_from_slice(&1u16.to_le_bytes());
        r.extend_from_slice(&id.to_le_bytes());
        r.extend_from_slice(&target.to_le_bytes());
    };
    dir(&mut r, kind, 0x8000_0000 | 0x18);
    dir(&mut r, 1, 0x8000_0000 | 0x30);
    dir(&mut r, 0x409, 0x48);
    r.extend_from_slice(&(SECTION_RVA + 0x58).to_le_bytes());
    r.extend_from_slice(&(data.len() as u32).to_le_bytes());
    r.extend_from_slice(&[0; 8]);
    assert_eq!(r.len(), 0x58);
    r.extend_from_slice(data);
    r
}

/// A PE image (PE32+ or PE32) whose only section is `rsrc`.
fn image(rsrc: &[u8], pe32_plus: bool) -> Vec<u8> {
    let mut f = vec![0u8; 0x40];
    f[..2].copy_from_slice(b"MZ");
    f[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    f.extend_from_slice(b"PE\0\0");
    let optional_size: u16 = if pe32_plus { 240 } else { 224 };
    let machine: u16 = if pe32_plus { 0x8664 } else { 0x14c };
    f.extend_from_slice(&machine.to_le_bytes());
    f.extend_from_slice(&1u16.to_le_bytes());
    f.extend_from_slice(&[0; 12]);
    f.extend_from_slice(&optional_size.to_le_bytes());
    f.extend_from_slice(&0x22u16.to_le_bytes());
    let mut opt = vec![0u8; usize::from(optional_size)];
    let (magic, count_at, dirs_at) = if pe32_plus {
        (0x20bu16, 108, 112)
    } else {
        (0x10b, 92, 96)
    };
    opt[..2].copy_from_slice(&magic.to_le_bytes());
    opt[count_at..count_at + 4].copy_from_slice(&16u32.to_le_bytes());
    opt[dirs_at + 16..dirs_at + 20].copy_from_slice(&SECTION_RVA.to_le_bytes());
    opt[dirs_at + 20..dirs_at + 24].copy_from_slice(&(rsrc.len() as u32).to_le_bytes());
    f.extend(opt);
    let raw_size = (rsrc.len() as u32).div_ceil(0x200) * 0x200;
    f.extend_from_slice(b".rsrc\0\0\0");
    f.extend_from_slice(&(rsrc.len() as u32).to_le_bytes());
    f.extend_from_slice(&SECTION_RVA.to_le_bytes());
    f.extend_from_slice(&raw_size.to_le_bytes());
    f.extend_from_slice(&0x400u32.to_le_bytes());
    f.extend_from_slice(&[0; 16]);
    f.resize(0x400, 0);
    f.extend_from_slice(rsrc);
    f.resize(0x400 + raw_size as usize, 0);
    f
}

const PROCDUMP: &[(&str, &str)] = &[
    ("CompanyName", "Sysinternals - www.sysinternals.com"),
    ("FileDescription", "Sysinternals process dump utility"),
    ("FileVersion", "10.11"),
    ("OriginalFilename", "procdump"),
    ("ProductName", "ProcDump"),
];

/// A PE image whose version resource is ProcDump's (`OriginalFilename`
/// `procdump`); other modules' tests use it too.
pub(crate) fn procdump_image(pe32_plus: bool) -> Vec<u8> {
    let vi = version_info(
        vec![string_table("040904b0", PROCDUMP)],
        Some((0x409, 0x4b0)),
    );
    image(&resources(RT_VERSION, &vi), pe32_plus)
}

fn procdump_strings() -> VersionStrings {
    VersionStrings {
        original_file_name: Some("procdump".into()),
        company: Some("Sysinternals - www.sysinternals.com".into()),
        product: Some("ProcDump".into()),
        description: Some("Sysinternals process dump utility".into()),
        file_version: Some("10.11".into()),
    }
}

#[test]
fn reads_the_version_strings_of_pe32_plus_and_pe32_images() {
    for pe32_plus in [true, false] {
        let got = version_strings(&procdump_image(pe32_plus)).unwrap();
        assert_eq!(got, Some(procdump_strings()), "pe32+ = {pe32_plus}");
    }
}

#[test]
fn reads_from_a_file_touching_only_headers_and_resources() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pd.exe");
    std::fs::write(&path, procdump_image(true)).unwrap();
    assert_eq!(
        read_version_strings(&path).unwrap(),
        Some(procdump_strings())
    );
    let missing = dir.path().join("gone.exe");
    let err = read_version_strings(&missing).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("cannot read {}", missing.display())),
        "{err}"
    );
}

#[test]
fn the_translation_chooses_the_string_table() {
    let german = string_table("040704b0", &[("OriginalFilename", "de.exe")]);
    let english = string_table("040904b0", &[("OriginalFilename", "en.exe")]);
    let vi = version_info(vec![german.clone(), english.clone()], Some((0x409, 0x4b0)));
    let got = version_strings(&image(&resources(RT_VERSION, &vi), true))
        .unwrap()
        .unwrap();
    assert_eq!(got.original_file_name.as_deref(), Some("en.exe"));
    // Without a translation, the first table.
    let vi = version_info(vec![german, english], None);
    let got = version_strings(&image(&resources(RT_VERSION, &vi), true))
        .unwrap()
        .unwrap();
    assert_eq!(got.original_file_name.as_deref(), Some("de.exe"));
}

#[test]
fn images_without_a_version_resource_have_no_strings() {
    // A resource section with only an icon group (type 14).
    let vi = version_info(vec![string_table("040904b0", PROCDUMP)], None);
    assert_eq!(
        version_strings(&image(&resources(14, &vi), true)).unwrap(),
        None
    );
    // No resource directory at all.
    let mut img = procdump_image(true);
    img[0x40 + 24 + 112 + 16..0x40 + 24 + 112 + 24].fill(0);
    assert_eq!(version_strings(&img).unwrap(), None);
}

#[test]
fn non_pe_input_is_refused_with_a_reason() {
    assert_eq!(
        version_strings(b"").unwrap_err().to_string(),
        "not a PE image: no MZ header"
    );
    let mut mz = vec![0u8; 64];
    mz[..2].copy_from_slice(b"MZ");
    assert_eq!(
        version_strings(&mz).unwrap_err().to_string(),
        "not a PE image: no PE signature"
    );
}

#[test]
fn a_resource_tree_that_points_at_itself_ends() {
    let vi = version_info(vec![string_table("040904b0", PROCDUMP)], None);
    let mut rsrc = resources(RT_VERSION, &vi);
    // The name level points back at the root directory.
    rsrc[0x18 + 20..0x18 + 24].copy_from_slice(&0x8000_0000u32.to_le_bytes());
    let err = version_strings(&image(&rsrc, true)).unwrap_err();
    assert!(matches!(err, PeError::Malformed(_)), "{err}");
}

#[test]
fn every_truncation_and_corruption_is_an_answer_not_a_panic() {
    let whole = procdump_image(true);
    let mut outcomes = [0usize; 3];
    for cut in 0..whole.len() {
        match version_strings(&whole[..cut]) {
            Ok(Some(_)) => outcomes[0] += 1,
            Ok(None) => outcomes[1] += 1,
            Err(_) => outcomes[2] += 1,
        }
    }
    assert!(
        outcomes[2] > 0,
        "truncations must be reported: {outcomes:?}"
    );
    // Deterministic corruption: every byte of the headers and resources,
    // several flips each.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for at in 0..whole.len().min(0x400 + 0x300) {
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut bad = whole.clone();
            bad[at] ^= (seed as u8) | 1;
            let _ = version_strings(&bad);
        }
    }
    // Lengths that lie: the root node claims more than the block holds.
    let vi = version_info(vec![string_table("040904b0", PROCDUMP)], None);
    let mut lying = vi.clone();
    lying[..2].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(parse_version_info(&lying).is_err());
    let mut zero = vi;
    zero[..2].copy_from_slice(&0u16.to_le_bytes());
    assert!(parse_version_info(&zero).is_err());
}
