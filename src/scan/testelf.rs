//! Synthetic ELF64 files for the unit tests: program headers (`PT_LOAD`, `PT_INTERP`,
//! `PT_DYNAMIC`), `.dynamic` with `DT_NEEDED`/`DT_SONAME`, `.go.buildinfo`, and free bytes
//! standing for symbols, pclntab names and read-only data.

/// What to put in the file.
#[derive(Clone, Debug, Default)]
pub struct Spec<'a> {
    /// `ET_DYN` (a library or a PIE) instead of `ET_EXEC`.
    pub dyn_type: bool,
    pub interp: Option<&'a str>,
    pub needed: &'a [&'a str],
    pub soname: Option<&'a str>,
    pub buildinfo: Option<Vec<u8>>,
    pub extra: &'a [u8],
}

const BASE: u64 = 0x40_0000;

fn align(buf: &mut Vec<u8>, to: usize) {
    while !buf.len().is_multiple_of(to) {
        buf.push(0);
    }
}

/// (name, type, offset, size, link, entsize) of one section.
type Section = (&'static str, u32, usize, usize, u32, u64);

/// Builds the file.
pub fn build(spec: &Spec<'_>) -> Vec<u8> {
    let dynamic = !spec.needed.is_empty() || spec.soname.is_some();
    let phnum = 1 + usize::from(spec.interp.is_some()) + usize::from(dynamic);
    let mut out = vec![0u8; 64 + 56 * phnum];
    let mut sections: Vec<Section> = Vec::new();
    let mut phdrs: Vec<(u32, usize, usize)> = Vec::new();
    if let Some(i) = spec.interp {
        let at = out.len();
        out.extend(i.as_bytes());
        out.push(0);
        phdrs.push((3, at, i.len() + 1)); // PT_INTERP
        sections.push((".interp", 1, at, i.len() + 1, 0, 0));
    }
    if dynamic {
        let dynstr_at = out.len();
        let mut dynstr = vec![0u8];
        let mut entries: Vec<(u64, u64)> = Vec::new();
        for (tag, name) in
            (spec.needed.iter().map(|n| (1u64, *n))).chain(spec.soname.map(|s| (14, s)))
        {
            entries.push((tag, dynstr.len() as u64));
            dynstr.extend(name.as_bytes());
            dynstr.push(0);
        }
        out.extend(&dynstr);
        let strtab_index = sections.len() as u32 + 1;
        sections.push((".dynstr", 3, dynstr_at, dynstr.len(), 0, 0));
        align(&mut out, 8);
        let dyn_at = out.len();
        entries.push((0, 0)); // DT_NULL
        for (tag, val) in &entries {
            out.extend(tag.to_le_bytes());
            out.extend(val.to_le_bytes());
        }
        phdrs.push((2, dyn_at, entries.len() * 16)); // PT_DYNAMIC
        sections.push((".dynamic", 6, dyn_at, entries.len() * 16, strtab_index, 16));
    }
    if let Some(b) = &spec.buildinfo {
        align(&mut out, 16);
        sections.push((".go.buildinfo", 1, out.len(), b.len(), 0, 0));
        out.extend(b);
    }
    out.extend(spec.extra);
    finish(out, spec, phdrs, sections)
}

/// Appends `.shstrtab` and the section headers, writes the headers.
fn finish(
    mut out: Vec<u8>,
    spec: &Spec<'_>,
    mut phdrs: Vec<(u32, usize, usize)>,
    mut sections: Vec<Section>,
) -> Vec<u8> {
    let mut shstrtab = vec![0u8];
    let mut names = Vec::new();
    sections.push((".shstrtab", 3, 0, 0, 0, 0));
    for s in &sections {
        names.push(shstrtab.len() as u32);
        shstrtab.extend(s.0.as_bytes());
        shstrtab.push(0);
    }
    let last = sections.len() - 1;
    sections[last].2 = out.len();
    sections[last].3 = shstrtab.len();
    out.extend(&shstrtab);
    align(&mut out, 8);
    let shoff = out.len();
    out.extend([0u8; 64]); // the null section
    for (s, name) in sections.iter().zip(&names) {
        let addr = if s.1 == 3 && s.0 == ".shstrtab" {
            0
        } else {
            BASE + s.2 as u64
        };
        out.extend(name.to_le_bytes());
        out.extend(s.1.to_le_bytes());
        out.extend(2u64.to_le_bytes()); // SHF_ALLOC
        out.extend(addr.to_le_bytes());
        out.extend((s.2 as u64).to_le_bytes());
        out.extend((s.3 as u64).to_le_bytes());
        out.extend(s.4.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend(8u64.to_le_bytes());
        out.extend(s.5.to_le_bytes());
    }
    phdrs.insert(0, (1, 0, out.len())); // PT_LOAD of everything
    let header = header(spec, phdrs.len(), shoff, sections.len() + 1);
    out[..64].copy_from_slice(&header);
    for (i, (kind, offset, size)) in phdrs.iter().enumerate() {
        let mut p = Vec::with_capacity(56);
        p.extend(kind.to_le_bytes());
        p.extend(5u32.to_le_bytes());
        p.extend((*offset as u64).to_le_bytes());
        p.extend((BASE + *offset as u64).to_le_bytes());
        p.extend((BASE + *offset as u64).to_le_bytes());
        p.extend((*size as u64).to_le_bytes());
        p.extend((*size as u64).to_le_bytes());
        p.extend(8u64.to_le_bytes());
        out[64 + 56 * i..64 + 56 * (i + 1)].copy_from_slice(&p);
    }
    out
}

fn header(spec: &Spec<'_>, phnum: usize, shoff: usize, shnum: usize) -> Vec<u8> {
    let mut h = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    h.extend(if spec.dyn_type { 3u16 } else { 2u16 }.to_le_bytes());
    h.extend(62u16.to_le_bytes()); // x86-64
    h.extend(1u32.to_le_bytes());
    h.extend((BASE + 0x1000).to_le_bytes());
    h.extend(64u64.to_le_bytes());
    h.extend((shoff as u64).to_le_bytes());
    h.extend(0u32.to_le_bytes());
    for v in [64u16, 56, phnum as u16, 64, shnum as u16, shnum as u16 - 1] {
        h.extend(v.to_le_bytes());
    }
    h
}
