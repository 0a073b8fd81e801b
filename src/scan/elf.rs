//! ELF facts with the `object` crate: executable or shared object, static or dynamic
//! (`PT_INTERP`, `PT_DYNAMIC`), `DT_NEEDED`, the architecture and Go build information.

use memchr::memmem;
use object::Object as _;
use object::elf;
use object::read::elf::{Dyn as _, ElfFile, FileHeader, ProgramHeader as _};

use super::goinfo::{self, BuildInfo};

/// What an ELF file is, for the scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfType {
    Executable,
    SharedObject,
}

/// What the scan needs of one ELF file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfFacts {
    pub elf_type: ElfType,
    /// GOARCH spelling: `amd64`, `arm64`, ...
    pub arch: String,
    /// The program interpreter (`PT_INTERP`); none for a static executable and a library.
    pub interp: Option<String>,
    /// Has a `PT_DYNAMIC` segment.
    pub dynamic: bool,
    /// `DT_NEEDED` libraries.
    pub needed: Vec<String>,
    pub soname: Option<String>,
    pub go: Option<BuildInfo>,
}

impl ElfFacts {
    /// An executable without a program interpreter (static, or static-pie) is static.
    pub fn is_static(&self) -> bool {
        self.elf_type == ElfType::Executable && self.interp.is_none()
    }
}

/// Reads an ELF file; `Ok(None)` for relocatable objects and core dumps (never run).
pub fn read(data: &[u8], path: &str, executable: bool) -> Result<Option<ElfFacts>, String> {
    match object::FileKind::parse(data).map_err(|e| e.to_string())? {
        object::FileKind::Elf32 => {
            facts::<elf::FileHeader32<object::Endianness>>(data, path, executable)
        }
        object::FileKind::Elf64 => {
            facts::<elf::FileHeader64<object::Endianness>>(data, path, executable)
        }
        other => Err(format!("not ELF ({other:?})")),
    }
}

fn facts<Elf: FileHeader<Endian = object::Endianness>>(
    data: &[u8],
    path: &str,
    executable: bool,
) -> Result<Option<ElfFacts>, String> {
    let file = ElfFile::<Elf>::parse(data).map_err(|e| e.to_string())?;
    let (endian, header) = (file.endian(), file.elf_header());
    let e_type = header.e_type(endian);
    if !matches!(e_type, elf::ET_EXEC | elf::ET_DYN) {
        return Ok(None);
    }
    let phdrs = file.elf_program_headers();
    let interp = (phdrs.iter())
        .find(|p| p.p_type(endian) == elf::PT_INTERP)
        .and_then(|p| p.data(endian, data).ok())
        .map(|b| String::from_utf8_lossy(b.split(|&c| c == 0).next().unwrap_or(b)).into_owned());
    let dynamic = phdrs.iter().any(|p| p.p_type(endian) == elf::PT_DYNAMIC);
    let (needed, soname) = dynamic_strings(&file);
    let has_entry = header.e_entry(endian).into() != 0;
    let elf_type = match (e_type, &interp) {
        (elf::ET_EXEC, _) | (_, Some(_)) => ElfType::Executable,
        _ if soname.is_some() || file_name(path).contains(".so") => ElfType::SharedObject,
        _ if executable && has_entry => ElfType::Executable, // static-pie
        _ => ElfType::SharedObject,
    };
    let big = !file.is_little_endian();
    Ok(Some(ElfFacts {
        elf_type,
        arch: arch(header.e_machine(endian), file.is_64(), big),
        interp,
        dynamic,
        needed,
        soname,
        go: go_build_info(&file, data),
    }))
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `DT_NEEDED` entries and `DT_SONAME` from the dynamic section.
fn dynamic_strings<Elf: FileHeader<Endian = object::Endianness>>(
    file: &ElfFile<'_, Elf>,
) -> (Vec<String>, Option<String>) {
    let (endian, data, sections) = (file.endian(), file.data(), file.elf_section_table());
    let Ok(Some((dyns, link))) = sections.dynamic(endian, data) else {
        return (Vec::new(), None);
    };
    let Ok(strings) = sections.strings(endian, data, link) else {
        return (Vec::new(), None);
    };
    let (mut needed, mut soname) = (Vec::new(), None);
    for d in dyns {
        let tag = d.tag32(endian);
        if !matches!(tag, Some(t) if t == elf::DT_NEEDED as i32 || t == elf::DT_SONAME as i32) {
            continue;
        }
        let Ok(s) = d.string(endian, strings) else {
            continue;
        };
        let s = String::from_utf8_lossy(s).into_owned();
        if tag == Some(elf::DT_NEEDED as i32) {
            needed.push(s);
        } else {
            soname = Some(s);
        }
    }
    (needed, soname)
}

/// Build information from `.go.buildinfo`, or from the magic wherever it is 16-byte aligned
/// (binaries whose section headers were removed).
fn go_build_info<Elf: FileHeader<Endian = object::Endianness>>(
    file: &ElfFile<'_, Elf>,
    data: &[u8],
) -> Option<BuildInfo> {
    let endian = file.endian();
    let at_address = |addr: u64, len: u64| -> Option<Vec<u8>> {
        (file.elf_program_headers().iter())
            .filter(|p| p.p_type(endian) == elf::PT_LOAD)
            .find_map(|p| p.data_range(endian, data, addr, len).ok().flatten())
            .map(<[u8]>::to_vec)
    };
    let blob = match file.section_by_name(".go.buildinfo") {
        Some(s) => object::ObjectSection::data(&s).ok()?,
        None => {
            let at = memmem::find_iter(data, goinfo::MAGIC).find(|at| at % 16 == 0)?;
            &data[at..]
        }
    };
    goinfo::parse(blob, &at_address)
}

/// The GOARCH name of an ELF machine.
fn arch(machine: u16, is_64: bool, big_endian: bool) -> String {
    match (machine, is_64, big_endian) {
        (elf::EM_X86_64, _, _) => "amd64",
        (elf::EM_386, _, _) => "386",
        (elf::EM_AARCH64, _, _) => "arm64",
        (elf::EM_ARM, _, _) => "arm",
        (elf::EM_PPC64, _, false) => "ppc64le",
        (elf::EM_PPC64, _, true) => "ppc64",
        (elf::EM_S390, true, _) => "s390x",
        (elf::EM_RISCV, true, _) => "riscv64",
        (elf::EM_LOONGARCH, true, _) => "loong64",
        (elf::EM_MIPS, true, false) => "mips64le",
        (elf::EM_MIPS, true, true) => "mips64",
        _ => return format!("elf-machine-{machine}"),
    }
    .to_string()
}
